"""threads.json: processes registering threads at once never corrupt it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tierflow.errors import TierflowError
from tierflow.runner import Runner

WRITER = """
import sys
from tierflow.runner import Runner
r = Runner(sys.argv[1])
for i in range(40):
    r._remember(f"{sys.argv[2]}-{i}", "triage", {"tickets": []})
"""


def test_parallel_processes_keep_every_thread(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"p{n}"]) for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    threads = json.loads((tmp_path / "threads.json").read_text())
    assert len(threads) == 160  # none lost to a concurrent read-modify-write
    assert not list(tmp_path.glob("*.tmp"))


def test_a_corrupt_index_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "threads.json").write_text('{"half": ')
    with pytest.raises(TierflowError, match="move it aside"):
        Runner(tmp_path).thread_info("x")


async def test_a_run_killed_before_its_first_checkpoint_resumes_from_its_input(
    tmp_path: Path,
) -> None:
    from langgraph.types import RetryPolicy

    from tierflow.evals.scripted import PERFECT, models_for
    from tierflow.runtime import RunContext

    ctx = RunContext(
        profile="openai",
        models=models_for("triage", accuracy=PERFECT),
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
    )
    runner = Runner(tmp_path, context=ctx)
    from tests.unit.test_budget_runs import tickets

    (ticket,) = tickets(1)
    # What `run` records before the graph starts; the process then dies (kill -9).
    runner._remember("killed", "triage", {"tickets": [ticket]})
    assert await runner.history("killed") == []

    result = await runner.resume("killed")

    assert result.values["status"] == "done" and list(result.values["tickets_out"]) == [
        ticket["id"]
    ]
