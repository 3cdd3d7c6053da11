"""One budget across processes: a run's ledger in PostgreSQL (tierflow.ledger_pg)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from langchain_core.messages import HumanMessage

from tests.unit.test_budget_runs import tickets, worst_case_models
from tierflow.budget import share_ledgers
from tierflow.config import load_config
from tierflow.graphs import triage
from tierflow.ledger_pg import PostgresLedger, aread_kept
from tierflow.runtime import RunContext
from tierflow.tiers import TierPolicy
from tierflow.usage import spent_usd

FLAGSHIP = load_config("openai", require_keys=False).tier("flagship")
MSGS = [HumanMessage("a short question")]


def _replica(url: str, run_id: str, budget: float, calls: int, out: list[Any]) -> None:
    """One 'replica': its own thread, event loop and connection, reserving then paying in full.

    Appends each payment to ``out``, or the exception that stopped the replica.
    """

    async def main() -> None:
        ledger = PostgresLedger(url, run_id, budget)

        async def call() -> None:
            hold = await ledger.areserve(FLAGSHIP, MSGS, [])
            if hold is None:
                return
            await asyncio.sleep(0.01)  # the request is in flight
            cost = float(hold.estimate_usd or 0.0)  # the worst case happens: all of it is billed
            await ledger.asettle(hold, {"id": uuid.uuid4().hex, "cost_usd": cost})
            out.append(cost)

        await asyncio.gather(*(call() for _ in range(calls)))

    try:
        asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - reported by the test
        out.append(exc)


def test_two_replicas_of_one_run_never_spend_past_its_budget(postgres_url: str) -> None:
    run_id, budget = uuid.uuid4().hex, 0.3
    paid: list[Any] = []
    replicas = [
        threading.Thread(target=_replica, args=(postgres_url, run_id, budget, 30, paid))
        for _ in range(2)
    ]
    for r in replicas:
        r.start()
    for r in replicas:
        r.join(timeout=120)
    assert not [p for p in paid if isinstance(p, Exception)], paid
    # Each request reserves (and here pays) up to $0.062 of flagship output: 60 attempts from
    # two replicas, yet together they stay within the budget, and they use most of it.
    assert 3 <= len(paid) < 60
    assert sum(paid) <= budget + 1e-9
    assert sum(paid) > budget * 0.5
    with psycopg.connect(postgres_url) as db:
        (spent,) = db.execute(
            "SELECT spent_usd FROM tierflow_ledgers WHERE run_id = %s", (run_id,)
        ).fetchone()
        (holds,) = db.execute(
            "SELECT count(*) FROM tierflow_ledger_holds WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert spent == pytest.approx(sum(paid)) and holds == 0


async def test_a_record_counts_once_and_a_dead_replicas_hold_becomes_spend(
    postgres_url: str,
) -> None:
    run_id = uuid.uuid4().hex
    a, b = PostgresLedger(postgres_url, run_id, 0.01), PostgresLedger(postgres_url, run_id, 0.01)
    rec = {"id": uuid.uuid4().hex, "cost_usd": 0.004}
    hold = await a.areserve(FLAGSHIP, MSGS, [])
    assert hold is not None
    await a.asettle(hold, rec)
    await b.aabsorb([rec, rec])  # a replayed phase offers the record again
    assert a.spent_usd == pytest.approx(0.004) and b.spent_usd == pytest.approx(0.004)

    # A replica died holding the rest of the budget, its request maybe processed: once the
    # hold expires it is charged at its reservation (estimated), never released.
    with psycopg.connect(postgres_url) as db:
        db.execute(
            "INSERT INTO tierflow_ledger_holds (call_id, run_id, usd, expires_at) "
            "VALUES (%s, %s, %s, %s)",
            ("dead", run_id, 0.006, time.time() + 60),
        )
    assert await b.areserve(FLAGSHIP, MSGS, []) is None  # still held
    with psycopg.connect(postgres_url) as db:
        db.execute("UPDATE tierflow_ledger_holds SET expires_at = 0 WHERE call_id = 'dead'")
    assert await b.areserve(FLAGSHIP, MSGS, []) is None  # now spent
    assert b.spent_usd == pytest.approx(0.01)
    with psycopg.connect(postgres_url) as db:
        charges = dict(db.execute(
            "SELECT record_id, usd FROM tierflow_ledger_charges WHERE run_id = %s", (run_id,)
        ).fetchall())  # fmt: skip
    assert charges == {rec["id"]: 0.004, "hold:dead": 0.006}


async def test_an_expired_hold_whose_owner_settles_counts_its_record_instead(
    postgres_url: str,
) -> None:
    run_id = uuid.uuid4().hex
    a, b = PostgresLedger(postgres_url, run_id, 1.0), PostgresLedger(postgres_url, run_id, 1.0)
    hold = await a.areserve(FLAGSHIP, MSGS, [])
    assert hold is not None and hold.estimate_usd
    with psycopg.connect(postgres_url) as db:  # a request slower than the hold's TTL
        db.execute(
            "UPDATE tierflow_ledger_holds SET expires_at = 0 WHERE call_id = %s", (hold.call_id,)
        )
    assert await b.areserve(FLAGSHIP, MSGS, []) is not None  # b charges the expired hold
    assert b.spent_usd == pytest.approx(hold.estimate_usd)

    await a.asettle(hold, {"id": "rec-slow", "cost_usd": 0.002})

    assert a.spent_usd == pytest.approx(0.002)


async def test_taken_holds_and_cancelled_attempts_are_records_the_database_keeps(
    postgres_url: str,
) -> None:
    run_id = uuid.uuid4().hex
    a = PostgresLedger(postgres_url, run_id, 1.0, thread=run_id)
    b = PostgresLedger(postgres_url, run_id, 1.0, thread=run_id)
    slow = await a.areserve(FLAGSHIP, MSGS, [], {"node": "classify", "model": "gpt-x"})
    with psycopg.connect(postgres_url) as db:  # replica a died with it in flight
        db.execute(
            "UPDATE tierflow_ledger_holds SET expires_at = 0 WHERE call_id = %s", (slow.call_id,)
        )
    cancelled = await b.areserve(FLAGSHIP, MSGS, [])
    left = await b.areserve(FLAGSHIP, MSGS, [], {"node": "extract"})  # never settles
    assert slow and cancelled and left and slow.estimate_usd and cancelled.estimate_usd
    await b.asettle(cancelled, {"id": "rec-cancelled", "cost_usd": cancelled.estimate_usd},
                    keep=True)  # fmt: skip

    await b.afinish()  # the drive ended

    kept = {r["id"]: r for r in await b.akept()}
    assert set(kept) == {f"hold:{slow.call_id}", "rec-cancelled", f"hold:{left.call_id}"}
    assert kept[f"hold:{slow.call_id}"]["cause"] == "process died after send"
    assert kept[f"hold:{slow.call_id}"]["node"] == "classify"
    assert kept[f"hold:{left.call_id}"]["cause"] == "cancelled after send"
    assert b.spent_usd == pytest.approx(sum(r["cost_usd"] for r in kept.values()))
    assert b.in_flight == 0
    by_thread = await aread_kept(postgres_url, "another-run", run_id)
    assert {r["id"] for r in by_thread} == set(kept)
    await a.asettle(slow, {"id": "rec-slow", "cost_usd": 0.002})  # its owner settles after all
    assert f"hold:{slow.call_id}" not in {r["id"] for r in await b.akept()}


async def test_a_budget_raised_by_one_replica_holds_for_all(postgres_url: str) -> None:
    run_id = uuid.uuid4().hex
    a, b = PostgresLedger(postgres_url, run_id, 0.002), PostgresLedger(postgres_url, run_id, 0.002)
    assert await a.areserve(FLAGSHIP, MSGS, []) is not None
    assert await a.areserve(FLAGSHIP, MSGS, []) is None  # the first hold took it all
    a.raise_budget(1.0)  # a human raised it at a gate served by replica a
    assert await a.areserve(FLAGSHIP, MSGS, []) is not None
    hold = await b.areserve(FLAGSHIP, MSGS, [])  # b still thinks $0.002; the row says $1
    assert hold is not None and b.budget_usd == pytest.approx(1.0)


async def test_graph_runs_with_shared_ledgers_stay_within_random_budgets(
    postgres_url: str,
) -> None:
    import random

    share_ledgers(postgres_url)
    try:
        graph = triage.build().compile()
        models = worst_case_models("triage")
        ctx = RunContext(profile="openai", models=models,
                         policy=TierPolicy(name="unattended", human=False, on_budget="stop"))  # fmt: skip
        rng = random.Random(3)
        for _ in range(8):
            budget = round(10 ** rng.uniform(-3.3, -1.5), 6)
            out: Any = await graph.ainvoke(
                {"tickets": tickets(2), "budget_usd": budget},
                {"configurable": {"thread_id": uuid.uuid4().hex}},
                context=ctx,
            )
            assert spent_usd(out["usage"]) <= budget + 1e-12, budget
            with psycopg.connect(postgres_url) as db:
                (row,) = db.execute(
                    "SELECT spent_usd FROM tierflow_ledgers WHERE run_id = %s", (out["run_id"],)
                ).fetchall()
            assert row[0] == pytest.approx(spent_usd(out["usage"]))  # one source of truth
    finally:
        share_ledgers(None)
