"""A run's ledger in a SQLite file: a request in flight when the process dies stays charged.

The processes here are real: a child reserves (and maybe settles) on the file, then kills
itself with SIGKILL, as ``kill -9`` would, before any checkpoint could record the request.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from tests.unit.test_budget_runs import tickets, worst_case_models
from tierflow.budget import end_run, ledger_for, share_ledgers
from tierflow.config import load_config
from tierflow.graphs import triage
from tierflow.ledger_sqlite import SqliteLedger, read_kept
from tierflow.runtime import RunContext
from tierflow.tiers import TierPolicy
from tierflow.usage import UsageRecord, spent_usd

REPO = Path(__file__).resolve().parents[2]
FLAGSHIP = load_config("openai", require_keys=False).tier("flagship")
MSGS = [HumanMessage("a short question")]

# A process that holds (and with "settle", pays) one request, then dies at once.
CHILD = """
import json, os, signal, sys
from langchain_core.messages import HumanMessage
from tierflow.config import load_config
from tierflow.ledger_sqlite import SqliteLedger, read_kept
path, run_id, settle = sys.argv[1], sys.argv[2], sys.argv[3] == "settle"
ledger = SqliteLedger(path, run_id, 1.0)
tier = load_config("openai", require_keys=False).tier("flagship")
hold = ledger.reserve(tier, [HumanMessage("a short question")], [])
record = {"id": "rec-1", "cost_usd": 0.01}
if settle:
    ledger.settle(hold, record)  # the server answered; the checkpoint never came
print(json.dumps({"estimate": hold.estimate_usd, "call_id": hold.call_id}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


# A process of a run on thread "t" that holds one request for a node and tier, then dies.
LABELLED = """
import os, signal, sys
from langchain_core.messages import HumanMessage
from tierflow.config import load_config
from tierflow.ledger_sqlite import SqliteLedger
tier = load_config("openai", require_keys=False).tier("flagship")
label = {"node": "classify", "subagent": "triage", "task_id": "t1", "tier": "flagship",
         "model": "gpt-x", "endpoint": "https://api.example/v1"}
ledger = SqliteLedger(sys.argv[1], sys.argv[2], 1.0, thread="t")
print(ledger.reserve(tier, [HumanMessage("a short question")], [], label).estimate_usd, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_after(path: Path, run_id: str, step: str, child: str = CHILD) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", child, str(path), run_id, step],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]
    return json.loads(done.stdout)


def _charges(path: Path) -> dict[str, float]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT record_id, usd FROM charges").fetchall())


def test_a_hold_left_by_a_killed_process_is_estimated_spend(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    child = _killed_after(path, "run-1", "hold")

    after = SqliteLedger(path, "run-1", 1.0)  # the next process, rebuilt from empty state

    assert after.spent_usd == pytest.approx(child["estimate"]) and child["estimate"] > 0
    assert after.remaining_usd() == pytest.approx(1.0 - child["estimate"])
    assert _charges(path) == {f"hold:{child['call_id']}": pytest.approx(child["estimate"])}
    again = SqliteLedger(path, "run-1", 1.0)  # and the one after: counted once
    assert again.spent_usd == pytest.approx(child["estimate"])


def test_a_paid_request_whose_record_missed_the_checkpoint_still_counts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _killed_after(path, "run-1", "settle")

    after = SqliteLedger(path, "run-1", 1.0)
    assert after.spent_usd == pytest.approx(0.01)
    after.absorb([{"id": "rec-1", "cost_usd": 0.01}])  # a replayed phase offers the record
    assert after.spent_usd == pytest.approx(0.01)


def test_a_live_owner_settling_a_taken_hold_replaces_it_by_its_record(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    first = SqliteLedger(path, "run-1", 1.0)
    hold = first.reserve(FLAGSHIP, MSGS, [])
    assert hold is not None and hold.estimate_usd
    second = SqliteLedger(path, "run-1", 1.0)  # e.g. this process rebuilt its ledger
    assert second.spent_usd == pytest.approx(hold.estimate_usd)

    first.settle(hold, {"id": "rec-1", "cost_usd": 0.002})

    assert first.spent_usd == pytest.approx(0.002)
    assert SqliteLedger(path, "run-1", 1.0).spent_usd == pytest.approx(0.002)
    assert _charges(path) == {"rec-1": 0.002}
    assert read_kept(path, "run-1", None) == []  # the taken hold's record went with it


def test_state_seeds_a_new_run_once_and_the_file_is_the_truth_after(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    known = [{"id": "r1", "cost_usd": 0.1}]
    # A subagent's view: the run had spent 0.3 when the task was dispatched, plus its record.
    first = SqliteLedger(path, "run-1", 1.0, spent_usd=0.3, known=known)
    assert first.spent_usd == pytest.approx(0.4)
    first.settle(first.reserve(FLAGSHIP, MSGS, []), {"id": "r2", "cost_usd": 0.05})  # type: ignore[arg-type]

    again = SqliteLedger(path, "run-1", 1.0, spent_usd=0.3, known=known)
    assert again.spent_usd == pytest.approx(0.45)
    assert SqliteLedger(path, "run-2", None).spent_usd == 0.0  # another run, its own row


def test_processes_on_one_file_never_pass_the_budget(tmp_path: Path) -> None:
    path, budget, paid = tmp_path / "ledger.sqlite", 0.3, []

    def process() -> None:
        ledger = SqliteLedger(path, "run-1", budget)
        while (hold := ledger.reserve(FLAGSHIP, MSGS, [])) is not None:
            # The worst case happens: all of it is billed.
            ledger.settle(hold, {"id": uuid.uuid4().hex, "cost_usd": hold.estimate_usd})
            paid.append(hold.estimate_usd)

    workers = [threading.Thread(target=process) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert len(paid) >= 3 and sum(paid) <= budget + 1e-9
    assert SqliteLedger(path, "run-1", budget).spent_usd == pytest.approx(sum(paid))


async def test_graph_runs_on_a_sqlite_ledger_match_their_records(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    share_ledgers(f"sqlite:///{path}")
    try:
        assert isinstance(ledger_for({"run_id": "probe", "budget_usd": 1.0}), SqliteLedger)
        end_run({"run_id": "probe"})
        graph = triage.build().compile()
        policy = TierPolicy(name="unattended", human=False, on_budget="stop")
        ctx = RunContext(profile="openai", models=worst_case_models("triage"), policy=policy)
        for budget in (0.002, 0.02):
            out: Any = await graph.ainvoke(
                {"tickets": tickets(2), "budget_usd": budget},
                {"configurable": {"thread_id": uuid.uuid4().hex}},
                context=ctx,
            )
            assert spent_usd(out["usage"]) <= budget + 1e-12
            with sqlite3.connect(path) as db:
                (row,) = db.execute(
                    "SELECT spent_usd FROM ledgers WHERE run_id = ?", (out["run_id"],)
                ).fetchall()
                (holds,) = db.execute("SELECT COUNT(*) FROM holds").fetchone()
            assert row[0] == pytest.approx(spent_usd(out["usage"])) and holds == 0
    finally:
        share_ledgers(None)


def test_a_hold_taken_as_spend_is_a_record_of_what_it_was_for_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    estimate = _killed_after(path, "run-1", "", child=LABELLED)

    (rec,) = SqliteLedger(path, "run-1", 1.0).kept()  # the next process takes the hold

    UsageRecord.model_validate(rec)
    assert rec["id"] in _charges(path) and rec["id"].startswith("hold:")
    assert (rec["billing"], rec["cause"]) == ("estimated", "process died after send")
    assert rec["cost_usd"] == pytest.approx(estimate) and rec["run_id"] == "run-1"
    assert (rec["node"], rec["subagent"], rec["task_id"], rec["tier"], rec["model"]) == (
        "classify", "triage", "t1", "flagship", "gpt-x",
    )  # fmt: skip
    assert SqliteLedger(path, "run-1", 1.0).kept() == [rec]  # once, however often opened
    assert read_kept(path, "another-run", "t") == [rec]  # found by its thread too


def test_a_drive_end_takes_every_hold_of_the_run_and_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    # A run whose begin never reached a checkpoint: its requests are the thread's.
    lost = SqliteLedger(path, "lost-run", 1.0, thread="t")
    lost_hold = lost.reserve(FLAGSHIP, MSGS, [], {"node": "plan", "tier": "flagship"})
    run = SqliteLedger(path, "run-2", 1.0, thread="t")
    own = run.reserve(FLAGSHIP, MSGS, [])
    other = SqliteLedger(path, "other", 1.0, thread="u").reserve(FLAGSHIP, MSGS, [])
    assert lost_hold and own and other

    run.finish()

    kept = {r["run_id"]: r for r in run.kept()}
    assert set(kept) == {"lost-run", "run-2"}  # the other thread's hold is not this run's
    assert {r["cause"] for r in kept.values()} == {"cancelled after send"}  # this process's
    assert kept["lost-run"]["node"] == "plan" and run.in_flight == 0
    assert run.spent_usd == pytest.approx(own.estimate_usd)
    assert SqliteLedger(path, "lost-run", 1.0).spent_usd == pytest.approx(lost_hold.estimate_usd)
    lost.settle(lost_hold, {"id": "rec-late", "cost_usd": 0.001})  # its owner settles after all
    assert [r["run_id"] for r in run.kept()] == ["run-2"]


def test_a_run_without_a_budget_holds_its_request_too(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    hold = SqliteLedger(path, "run-1", None).reserve(FLAGSHIP, MSGS, [])
    assert hold is not None and hold.estimate_usd and hold.max_tokens == FLAGSHIP.max_output_tokens
    assert SqliteLedger(path, "run-1", None).spent_usd == pytest.approx(hold.estimate_usd)


def test_a_ledger_file_of_an_older_tierflow_is_upgraded_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # the tables before holds said what they were for
        db.executescript(
            "CREATE TABLE ledgers (run_id TEXT PRIMARY KEY, budget_usd REAL, "
            "spent_usd REAL NOT NULL DEFAULT 0);"
            "CREATE TABLE holds (call_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, "
            "usd REAL NOT NULL, owner TEXT NOT NULL);"
            "CREATE TABLE charges (record_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, "
            "usd REAL NOT NULL);"
            "INSERT INTO ledgers VALUES ('run-1', 1.0, 0.0);"
            "INSERT INTO holds VALUES ('c1', 'run-1', 0.25, 'a-dead-process');"
        )
    assert read_kept(path, "run-1", None) == []  # read only: nothing taken, nothing changed

    ledger = SqliteLedger(path, "run-1", 1.0)

    (rec,) = ledger.kept()
    assert (rec["id"], rec["cost_usd"], rec["node"]) == ("hold:c1", 0.25, "unknown")
    assert ledger.spent_usd == pytest.approx(0.25)
