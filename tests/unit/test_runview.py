"""The HTML run view: real codebase_qa state in, self-contained HTML with the right numbers out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langgraph.types import RetryPolicy

from tierflow.config import load_config
from tierflow.demo import DEMO_PROFILE, demo_models, demo_question, find_target
from tierflow.runner import Interrupt, Runner, RunResult
from tierflow.runtime import RunContext
from tierflow.runview import graph_svg, render_html, write_html
from tierflow.usage import reprice, spent_usd

# The demo models script codebase_qa as shipped (draft on mini, no second planning turn).
pytestmark = pytest.mark.shipped_codebase_qa

ROOT = Path(__file__).resolve().parents[2] / "tools"
# Scripted tokens (tierflow.demo) at openai prices: flagship 2.5/15, mini 0.75/4.5 $ per 1M tokens.
# codebase_qa drafts its answer on mini and needs no second planning turn (tierflow.demo).
FLAGSHIP_USD = (1000 * 2.5 + 100 * 15 + 900 * 2.5 + 60 * 15) / 1e6
MINI_USD = (600 * 0.75 + 30 * 4.5 + 800 * 0.75 + 50 * 4.5) / 1e6
NANO_USD = (300 * 0.20 + 20 * 1.25) / 1e6  # the answer, drafted on nano (one part)


@pytest.fixture
async def demo_run(tmp_path: Path) -> RunResult:
    models = demo_models(ROOT)
    ctx = RunContext(
        profile=DEMO_PROFILE,
        models=models,
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,  # the scripted search does the work
    )
    runner = Runner(tmp_path / "data", context=ctx)
    question = demo_question(find_target(ROOT))
    result = await runner.run(
        "codebase_qa", {"request": question, "env": {"root": str(ROOT)}, "budget_usd": 0.5}
    )
    for model in models.values():
        model.assert_complete()
    return result


def _by_id(page: str, element_id: str) -> str:
    match = re.search(rf"id='{re.escape(element_id)}'[^>]*>([^<]*)<", page)
    assert match, f"no element with id {element_id!r}"
    return match.group(1)


def _external_refs(page: str) -> list[str]:
    return re.findall(
        r"""(?:src|href|xlink:href|url)\s*[=(]\s*['"]?\s*(?:https?:)?//""", page, re.I
    )


async def test_html_shows_totals_tiers_timeline_and_escalation(
    demo_run: RunResult, tmp_path: Path
) -> None:
    cfg = load_config("openai", require_keys=False)
    out = write_html(demo_run, cfg, tmp_path / "view" / "run.html")
    page = out.read_text()

    usage = demo_run.values["usage"]
    assert demo_run.values["status"] == "answered"
    assert spent_usd(usage) == pytest.approx(FLAGSHIP_USD + MINI_USD + NANO_USD)
    assert _by_id(page, "total-cost") == f"${FLAGSHIP_USD + MINI_USD + NANO_USD:.6f}" == "$0.008645"
    assert (
        _by_id(page, "total-tokens")
        == str(sum(u["input_tokens"] + u["output_tokens"] for u in usage))
        == "3860"
    )
    assert _by_id(page, "graph-name") == "codebase_qa"
    assert _by_id(page, "thread-id") == demo_run.thread_id
    assert _by_id(page, "run-status") == "answered"
    assert _by_id(page, "call-count") == "5"
    assert _by_id(page, "tier-flagship-cost") == f"{FLAGSHIP_USD:.6f}"
    assert _by_id(page, "tier-mini-cost") == f"{MINI_USD:.6f}"
    assert _by_id(page, "tier-nano-cost") == f"{NANO_USD:.6f}"
    assert "reference-cost" not in page  # the openai profile is not priced as another

    for chart in ("chart-cost", "chart-tokens"):
        for tier in ("nano", "mini", "flagship"):
            assert f"id='{chart}-{tier}'" in page
    assert re.search(r"id='chart-cost-flagship' data-tier='flagship'\s+data-value='0\.0071", page)

    timeline = page.split("id='timeline'")[1].split("</table>")[0]
    assert timeline.count("<tr id='call-") == 5
    nodes = re.findall(r"<tr id='call-\d+'[^>]*>(?:<td[^>]*>[^<]*</td>){2}<td>(\w+)</td>", timeline)
    assert nodes == ["supervisor", "search", "search", "search", "answer"]
    assert "class='esc'" in timeline and "verifier_rejected" in timeline

    events = page.split("id='events'")[1].split("</table>")[0]
    assert "data-kind='escalation'" in events and "from=mini, to=flagship" in events
    assert "id='no-interrupts'" in page

    assert "<svg id='graph-svg'" in page and "data-node='search:escalate'" in page
    # The path taken: the nodes that called models are drawn bold with the tiers they used.
    ran = dict(re.findall(r"<g class='node ran' data-node='([^']+)' data-tiers='([^']*)'", page))
    assert ran == {"__start__": "", "__end__": "", "supervisor": "flagship",
                   "search:step": "mini,flagship", "answer": "nano"}  # fmt: skip
    assert "graph TD" in page  # mermaid source kept beside the picture
    assert "http://" not in page and "https://" not in page  # endpoints are not embedded
    assert _external_refs(page) == []


async def test_reference_prices_of_a_local_profile(demo_run: RunResult) -> None:
    local = load_config("local", require_keys=False)
    assert local.priced_as == "openai"
    page = render_html(demo_run, local)
    openai = load_config("openai", require_keys=False)
    expected = spent_usd(reprice(demo_run.values["usage"], openai))
    assert _by_id(page, "reference-cost") == f"${expected:.6f}"
    assert _by_id(page, "tier-total-reference-cost") == f"{expected:.6f}"
    assert "at openai $" in page


def test_interrupts_and_hostile_text_are_escaped(tmp_path: Path) -> None:
    result = RunResult(
        thread_id="t<1>",
        graph="codebase_qa",
        values={
            "status": "running",
            "usage": [],
            "events": [
                {
                    "id": "e1",
                    "kind": "human_decision",
                    "at": 1.0,
                    "subagent": "search",
                    "decision": "approve",
                    "reason": "<script>alert(1)</script>",
                }
            ],
        },
        interrupts=[Interrupt("i-1", {"kind": "budget", "question": "</script><b>raise?</b>"})],
    )
    page = render_html(result, load_config("openai", require_keys=False))
    assert _by_id(page, "run-status") == "waiting for input (1 interrupt(s))"
    assert _by_id(page, "total-cost") == "$0.000000"
    assert "<script>alert" not in page and "</script><b>" not in page
    assert "data-kind='human_decision'" in page and "data-id='i-1'" in page
    assert "t&lt;1&gt;" in page


def test_unknown_graph_still_renders(tmp_path: Path) -> None:
    result = RunResult("t", "no_such_graph", {"usage": []})
    page = write_html(result, load_config("openai", require_keys=False), tmp_path / "r.html")
    text = page.read_text()
    assert "graph picture unavailable" in text and "no_such_graph" in text


def test_graph_svg_draws_every_node_and_edge() -> None:
    nodes = ["__start__", "a", "sub:__start__", "sub:x", "__end__"]
    edges = [
        ("__start__", "a", False),
        ("a", "sub:__start__", True),
        ("sub:__start__", "sub:x", False),
        ("sub:x", "a", False),
        ("a", "a", True),
        ("a", "__end__", True),
    ]
    svg = graph_svg(nodes, edges)
    assert svg.count("class='node'") == len(nodes)
    assert svg.count("marker-end=") == len(edges)
    assert svg.count("stroke-dasharray") == 3
    assert "class='subgraph'" in svg


def _record(n: int, tier: str, start: float, latency: float, error: str | None = None) -> dict:
    return {
        "id": f"r{n}", "node": "search", "subagent": "search", "task_id": f"t{n}", "tier": tier,
        "model": f"m-{tier}", "endpoint": "http://127.0.0.1:1/v1", "input_tokens": 10,
        "cached_tokens": 0, "output_tokens": 2, "latency_s": latency, "cost_usd": 0.001,
        "error": error, "escalation_reason": None, "started_at": start, "run_id": "run",
    }  # fmt: skip


def test_the_gantt_puts_parallel_calls_on_their_own_lanes_coloured_by_tier() -> None:
    usage = [
        _record(1, "nano", 100.0, 2.0),
        _record(2, "nano", 100.5, 1.0),  # overlaps call 1: a second lane
        _record(3, "mini", 101.6, 1.0),  # call 2 has ended: back on lane 1 (index 1 is free)
        _record(4, "flagship", 103.0, 1.0, error="TimeoutError: slow"),  # after all: lane 0
    ]
    result = RunResult(
        "t", "codebase_qa",
        {"usage": usage, "answer": {"answer": "x <b>", "citations": []},
         "answer_problems": ["REDIRECT_LIMIT is 30, not 20"], "status": "unverified"},
    )  # fmt: skip
    page = render_html(result, load_config("openai", require_keys=False))
    bars = re.findall(r"<rect class='call' data-call='(\d)' data-tier='(\w+)' data-lane='(\d)'"
                      r"[^>]*fill='(#\w+)'", page)  # fmt: skip
    assert [(c, t, lane) for c, t, lane, _ in bars] == [
        ("1", "nano", "0"), ("2", "nano", "1"), ("3", "mini", "1"), ("4", "flagship", "0")
    ]  # fmt: skip
    colours = {t: fill for _, t, _, fill in bars}
    assert len(set(colours.values())) == 3  # one colour per tier
    assert "stroke='#c00'" in page.split("data-call='4'")[1].split("</rect>")[0]  # failed call
    assert "x &lt;b&gt;" in page and "REDIRECT_LIMIT is 30, not 20" in page
    assert "id='answer-problems'" in page


async def test_an_index_of_every_run_links_each_run_view(
    demo_run: RunResult, tmp_path: Path
) -> None:
    from tierflow.runview import write_index

    cfg = load_config("openai", require_keys=False)
    runner = Runner(tmp_path / "data")
    threads = await runner.threads()
    assert [t for t, _ in threads] == [demo_run.thread_id]
    runs = [(await runner.state(t), cfg) for t, _ in threads]
    index = write_index(runs, tmp_path / "site" / "index.html")
    page = index.read_text()
    link = re.search(r"<a href='(index_runs/[^']+\.html)'>", page)
    assert link and (index.parent / link.group(1)).is_file()
    row = re.search(r"<tr class='run'[^>]*>(.*?)</tr>", page, re.S)
    assert row and "answered" in row.group(1)
    cost = spent_usd(demo_run.values["usage"])
    assert f"${cost:.6f}" in row.group(1) and f">{len(demo_run.values['usage'])}<" in row.group(1)
    assert not _external_refs(page)


def test_show_html_without_a_thread_writes_the_index(
    demo_run: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tierflow.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the demo ran on the openai profile
    out = tmp_path / "runs.html"
    result = CliRunner().invoke(
        app, ["show", "--data-dir", str(tmp_path / "data"), "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "1 runs" in result.output and demo_run.thread_id in out.read_text()
    refused = CliRunner().invoke(app, ["show", "--data-dir", str(tmp_path / "data")])
    assert refused.exit_code == 2 and "--html PATH for an index" in refused.output
