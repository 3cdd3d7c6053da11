"""The run view in a real headless Chromium: scripts run, totals and tier charts are in the DOM."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from langgraph.types import RetryPolicy

from tierflow.config import load_config
from tierflow.demo import DEMO_PROFILE, demo_models, demo_question, find_target
from tierflow.runner import Runner
from tierflow.runtime import RunContext
from tierflow.runview import write_html
from tierflow.usage import spent_usd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2] / "tools"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
]


def _chromium() -> str:
    found = next(
        (
            p
            for p in ("/usr/bin/chromium", shutil.which("chromium") or "")
            if p and os.access(p, os.X_OK)
        ),
        None,
    )
    if found:
        return found
    reason = "chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}; CI is set, so the browser test must run", pytrace=False)
    pytest.skip(reason)


def _browse(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
async def page(tmp_path: Path) -> tuple[Path, float]:
    models = demo_models(ROOT)
    ctx = RunContext(
        profile=DEMO_PROFILE,
        models=models,
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,  # the scripted search does the work
    )
    result = await Runner(tmp_path / "data", context=ctx).run(
        "codebase_qa",
        {
            "request": demo_question(find_target(ROOT)),
            "env": {"root": str(ROOT)},
            "budget_usd": 0.5,
        },
    )
    out = write_html(result, load_config("local", require_keys=False), tmp_path / "run.html")
    return out, spent_usd(result.values["usage"])


def test_dom_after_scripts_shows_totals_and_charts(
    page: tuple[Path, float], tmp_path: Path
) -> None:
    chromium = _chromium()
    html_file, total = page
    done = _browse(chromium, tmp_path, "--dump-dom", html_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # The inline script marks the page ready and re-adds the costs from the embedded JSON.
    assert re.search(r"<html[^>]*data-runview=\"ready\"", dom), dom[:500]
    assert re.search(rf"id=\"total-cost\"[^>]*>\${total:.6f}<", dom)
    assert re.search(rf"id=\"total-cost-check\"[^>]*>\${total:.6f}<", dom)
    assert re.search(r"id=\"reference-cost\"[^>]*>\$0\.008645<", dom)  # nano drafts the answer
    for chart in ("chart-cost", "chart-tokens"):
        assert f'<svg id="{chart}"' in dom
        for tier in ("nano", "mini", "flagship"):
            assert re.search(rf'<g class="bar" id="{chart}-{tier}"', dom)
    # The graph picture: 5 nodes, and each subagent's 3 phases drawn inside it.
    assert dom.count('class="node') == 5 + 2 * 3
    # The path taken, and the Gantt: one bar per recorded call, in the rendered DOM.
    assert dom.count('class="node ran"') == 5
    assert len(re.findall(r'<rect class="call" data-call="\d+"', dom)) == 5
    assert '<pre id="answer">' in dom


def test_screenshot_renders(page: tuple[Path, float], tmp_path: Path) -> None:
    chromium = _chromium()
    shot = tmp_path / "run.png"
    done = _browse(
        chromium, tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page[0].as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
