"""Interrupt in one process, resume in another, on the SQLite checkpointer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).with_name("resume_driver.py")


def run_phase(phase: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> dict:
    """Run one phase of the driver in a fresh Python process and return its JSON report."""
    # Small output caps make the worst-case estimates easy to reason about:
    # flagship <= 500 * $15/1M = $0.0075 of output, mini <= 200 * $4.5/1M.
    env = {
        **os.environ,
        "TIERFLOW_TIERS__FLAGSHIP__MAX_OUTPUT_TOKENS": "500",
        "TIERFLOW_TIERS__MINI__MAX_OUTPUT_TOKENS": "200",
        **(extra_env or {}),
    }
    out = subprocess.run(
        [sys.executable, str(DRIVER), phase, str(data_dir), "thread-1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_resume_across_processes(data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
    """Start a run that stops at a budget interrupt, then finish it from a new process."""
    first = run_phase("start", data_dir, extra_env)
    # The second supervisor call (its input alone is ~$0.0037 plus the useful minimum of output,
    # more than the $0.0029 left) was not made: a budget interrupt.
    assert first["requests"] == {"flagship": 1, "mini": 1, "nano": 0}
    assert [i["kind"] for i in first["interrupts"]] == ["budget"]
    assert first["interrupts"][0]["spent_usd"] == 0.0046
    assert first["results"] == ["t1.1-search"]

    second = run_phase("resume", data_dir, extra_env)
    # New process: the finished search is not redone (mini saw no request), the run completes.
    assert second["requests"] == {"flagship": 2, "mini": 0, "nano": 0}
    assert second["status"] == "answered"
    # It cited fs.py:1; the citation moved to the line that defines fs_tools.
    lines = (Path(__file__).resolve().parents[2] / "tools" / "fs.py").read_text().splitlines()
    defined = next(n for n, t in enumerate(lines, 1) if t.startswith("def fs_tools"))
    assert second["answer"]["citations"] == [{"path": "fs.py", "line": defined}]
    assert second["results"] == ["t1.1-search"]
    assert second["usage_nodes"] == ["supervisor", "search", "supervisor", "answer"]


def test_budget_interrupt_survives_process_exit_and_resumes_on_sqlite(tmp_path: Path) -> None:
    check_resume_across_processes(tmp_path)
    assert (tmp_path / "checkpoints.sqlite").exists()
