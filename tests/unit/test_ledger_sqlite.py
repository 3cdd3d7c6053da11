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
from tierflow.ledger_sqlite import SqliteLedger
from tierflow.runtime import RunContext
from tierflow.tiers import TierPolicy
from tierflow.usage import spent_usd

REPO = Path(__file__).resolve().parents[2]
FLAGSHIP = load_config("openai", require_keys=False).tier("flagship")
MSGS = [HumanMessage("a short question")]

# A process that holds (and with "settle", pays) one request, then dies at once.
CHILD = """
import json, os, signal, sys
from langchain_core.messages import HumanMessage
from tierflow.config import load_config
from tierflow.ledger_sqlite import SqliteLedger
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


def _killed_after(path: Path, run_id: str, step: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), run_id, step],
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
