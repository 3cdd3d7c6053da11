"""A Runner's runs keep their ledger beside its checkpoints, and no hold outlives a drive.

The kills are real: a child process reserves on the ledger file (through a Runner, or a
ledger of its own) and dies with SIGKILL, as ``kill -9`` would, before any checkpoint could
record its request.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

from tests.unit.test_budget_runs import tickets
from tierflow.budget import IN_PROCESS, Ledger, ledger_for, share_ledgers
from tierflow.evals.scripted import PERFECT, models_for
from tierflow.graphs import triage
from tierflow.runner import LEDGER_FILE, Runner
from tierflow.runtime import RunContext
from tierflow.usage import UsageRecord, spent_usd

pytestmark = pytest.mark.usefixtures("isolated_env")

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(initial_interval=0, jitter=False, max_attempts=1)
INPUT = {"tickets": tickets(2), "budget_usd": 0.5}

# A triage run whose first model request kills its process: sent, never answered.
RUN_AND_DIE = """
import asyncio, json, os, signal, sys
from langgraph.types import RetryPolicy
from tierflow.evals.scripted import OracleChatModel
from tierflow.runner import Runner
from tierflow.runtime import RunContext

def die(messages):
    os.kill(os.getpid(), signal.SIGKILL)

models = {t: OracleChatModel(script=[], label=t, responder=die) for t in ("nano", "mini", "flagship")}
ctx = RunContext(profile="openai", models=models, retry=RetryPolicy(max_attempts=1))
inputs = json.loads(sys.argv[2])
asyncio.run(Runner(sys.argv[1], context=ctx).run("triage", inputs, thread_id="t"))
"""

# A process of run argv[2] that holds one request on the ledger file argv[1], then dies.
HOLD_AND_DIE = """
import os, signal, sys
from langchain_core.messages import HumanMessage
from tierflow.config import load_config
from tierflow.ledger_sqlite import SqliteLedger
tier = load_config("openai", require_keys=False).tier("mini")
hold = SqliteLedger(sys.argv[1], sys.argv[2], 0.5).reserve(tier, [HumanMessage("hi")], [])
print(hold.estimate_usd, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]
    return done.stdout


def _runner(data: Path) -> Runner:
    return Runner(data, context=RunContext(profile="openai", models=models_for("triage", PERFECT),
                                           retry=FAST))  # fmt: skip


def _book(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as db:
        return {
            "spent": dict(db.execute("SELECT run_id, spent_usd FROM ledgers").fetchall()),
            "holds": db.execute("SELECT COUNT(*) FROM holds").fetchone()[0],
            "taken": [k for (k,) in db.execute("SELECT record_id FROM charges")
                      if k.startswith("hold:")],
        }  # fmt: skip


def _held(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r for r in values["usage"] if r["billing"] == "estimated" and r["id"].startswith("hold:")
    ]


async def test_each_runner_keeps_its_runs_ledger_beside_its_sqlite_checkpoints(
    tmp_path: Path,
) -> None:
    first = await _runner(tmp_path / "a").run("triage", INPUT, thread_id="t")
    second = await _runner(tmp_path / "b").run("triage", INPUT, thread_id="t")

    for data, result in ((tmp_path / "a", first), (tmp_path / "b", second)):
        book = _book(data / LEDGER_FILE)
        assert book["spent"] == {result.values["run_id"]: pytest.approx(
            spent_usd(result.values["usage"]))}  # fmt: skip
        assert book["holds"] == 0
    # Outside any Runner nothing is inherited: a graph's ledger stays in this process.
    assert type(ledger_for({"run_id": "outside", "budget_usd": 1.0})) is Ledger
    out: Any = await triage.build().compile().ainvoke(
        INPUT, {"configurable": {"thread_id": "plain"}},
        context=RunContext(profile="openai", models=models_for("triage", PERFECT), retry=FAST),
    )  # fmt: skip
    assert out["run_id"] not in _book(tmp_path / "a" / LEDGER_FILE)["spent"]


async def test_share_ledgers_and_the_environment_override_a_runners_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite"
    monkeypatch.setenv("TIERFLOW_LEDGER_URL", f"sqlite:///{elsewhere}")
    result = await _runner(tmp_path / "env").run("triage", INPUT, thread_id="t")
    assert result.values["run_id"] in _book(elsewhere)["spent"]
    assert not (tmp_path / "env" / LEDGER_FILE).exists()

    monkeypatch.delenv("TIERFLOW_LEDGER_URL")
    share_ledgers(IN_PROCESS)
    try:
        done = await _runner(tmp_path / "memory").run("triage", INPUT, thread_id="t")
    finally:
        share_ledgers(None)
    assert done.values["status"] == "done"
    assert not (tmp_path / "memory" / LEDGER_FILE).exists()


async def test_a_request_of_a_killed_run_is_a_record_of_the_resumed_run_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _killed(RUN_AND_DIE, str(data), json.dumps(INPUT))
    runner = _runner(data)

    resumed = await runner.resume("t")
    again = await runner.resume("t")
    shown = await runner.state("t")

    assert resumed.values["status"] == "done"
    held = _held(resumed.values)  # every request in flight when it died: one at least
    assert held and all(UsageRecord.model_validate(r) for r in held)
    assert {r["cause"] for r in held} == {"process died after send"}
    # What each was for: a request the resumed run made again (the child named models by tier).
    redone = {(r["node"], r["tier"]) for r in resumed.values["usage"] if r not in held}
    assert all((r["node"], r["tier"]) in redone and r["model"] == r["tier"] for r in held)
    assert all(r["cost_usd"] > 0 for r in held)
    assert _held(again.values) == _held(shown.values) == held  # once, however often resumed
    book = _book(data / LEDGER_FILE)
    assert sorted(book["taken"]) == sorted(r["id"] for r in held) and book["holds"] == 0
    # The run's cost includes them, as its ledger does.
    assert spent_usd(shown.values["usage"]) == pytest.approx(sum(book["spent"].values()))


async def test_a_resumed_run_that_makes_no_model_call_takes_the_holds_left(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    runner = _runner(data)
    done = await runner.run("triage", INPUT, thread_id="t")
    run_id = done.values["run_id"]
    estimate = float(_killed(HOLD_AND_DIE, str(data / LEDGER_FILE), run_id))

    resumed = await runner.resume("t")  # the run had ended: nothing to call

    assert len(resumed.values["usage"]) == len(done.values["usage"]) + 1
    (hold,) = _held(resumed.values)
    assert (hold["cost_usd"], hold["run_id"]) == (pytest.approx(estimate), run_id)
    book = _book(data / LEDGER_FILE)
    assert book["holds"] == 0 and book["spent"][run_id] == pytest.approx(
        spent_usd(resumed.values["usage"]))  # fmt: skip
    assert _held((await runner.resume("t")).values) == [hold]
