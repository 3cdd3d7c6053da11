"""The thread registry lives in the checkpointer's database: durable, shared, never corrupt."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tierflow.errors import TierflowError
from tierflow.runner import Runner, open_checkpointer
from tierflow.threads import ThreadRegistry

WRITER = """
import asyncio, sys
from tierflow.runner import open_checkpointer
from tierflow.threads import ThreadRegistry
async def main():
    async with open_checkpointer(__import__("pathlib").Path(sys.argv[1])) as saver:
        reg = await ThreadRegistry.open(saver)
        for i in range(40):
            await reg.put(f"{sys.argv[2]}-{i}", {"graph": "triage"})
asyncio.run(main())
"""


def test_parallel_processes_keep_every_thread(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"p{n}"]) for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as db:
        (count,) = db.execute("SELECT count(*) FROM tierflow_threads").fetchone()
    assert count == 160  # none lost to a concurrent writer
    assert not (tmp_path / "threads.json").exists()


async def test_an_unknown_thread_names_the_recent_ones(tmp_path: Path) -> None:
    async with open_checkpointer(tmp_path) as saver:
        reg = await ThreadRegistry.open(saver)
        await reg.put("older", {"graph": "triage"})
        await reg.put("newer", {"graph": "triage"})
    with pytest.raises(TierflowError, match="unknown thread 'x'.*recent threads: newer, older"):
        await Runner(tmp_path).thread_info("x")


async def test_an_older_threads_json_is_imported_once(tmp_path: Path) -> None:
    legacy = {"t-old": {"graph": "triage", "profile": "openai", "created_at": 1.0}}
    (tmp_path / "threads.json").write_text(json.dumps(legacy))
    assert (await Runner(tmp_path).thread_info("t-old"))["profile"] == "openai"
    assert not (tmp_path / "threads.json").exists()
    assert (tmp_path / "threads.json.imported").exists()
    (tmp_path / "threads.json").write_text('{"half": ')  # a corrupt one says what to do
    with pytest.raises(TierflowError, match="move it aside"):
        await Runner(tmp_path).thread_info("t-old")


async def test_a_run_killed_before_its_first_checkpoint_resumes_from_its_input(
    tmp_path: Path,
) -> None:
    from langgraph.types import RetryPolicy

    from tests.unit.test_budget_runs import tickets
    from tierflow.evals.scripted import PERFECT, models_for
    from tierflow.runtime import RunContext

    ctx = RunContext(
        profile="openai",
        models=models_for("triage", accuracy=PERFECT),
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
    )
    runner = Runner(tmp_path, context=ctx)
    (ticket,) = tickets(1)
    # What `run` registers before the graph starts; the process then dies (kill -9).
    async with open_checkpointer(tmp_path) as saver:
        reg = await ThreadRegistry.open(saver)
        await reg.put("killed", runner._info("triage", {"tickets": [ticket]}))
    assert await runner.history("killed") == []

    result = await runner.resume("killed")

    assert result.values["status"] == "done" and list(result.values["tickets_out"]) == [
        ticket["id"]
    ]
