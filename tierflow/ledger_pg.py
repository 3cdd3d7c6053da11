"""A run's budget ledger in PostgreSQL, shared by every process and replica that runs its branches.

The in-process :class:`tierflow.budget.Ledger` keeps parallel branches of one process within the
budget. When branches of one run execute in different processes (server replicas, or a
``tierflow resume`` beside a running worker), each process would otherwise count only its own
spend. :class:`PostgresLedger` keeps the run's figures in three tables instead:

- ``tierflow_ledgers``: one row per run (budget, spend). Every reservation locks it, so
  reservations of one run are serialised across processes;
- ``tierflow_ledger_holds``: the worst case of each request in flight, written before it is
  sent, until it settles. A hold of a process that died expires after ``HOLD_TTL_S`` into the
  charge ``hold:<call id>`` at its reservation: the request may have been processed (billed,
  ``estimated``), so its money is spent, not released. Should its owner settle after all, the
  record replaces that charge;
- ``tierflow_ledger_charges``: the cost of each settled request by record id, so a record
  counts once however many processes offer it (a replayed phase, a rebuilt ledger).

Turn it on with :func:`tierflow.budget.share_ledgers` (the Runner does, for a PostgreSQL
``checkpoint_url``) or ``TIERFLOW_LEDGER_URL``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from tierflow.budget import Ledger, Reservation, plan_call
from tierflow.config import TierSpec

__all__ = ["PostgresLedger", "HOLD_TTL_S", "SCHEMA"]

# A hold older than this belongs to a process that died mid-request: it becomes spend.
HOLD_TTL_S = 900.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS tierflow_ledgers (
    run_id TEXT PRIMARY KEY,
    budget_usd DOUBLE PRECISION,
    spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tierflow_ledger_holds (
    call_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    usd DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS tierflow_ledger_holds_run ON tierflow_ledger_holds (run_id);
CREATE TABLE IF NOT EXISTS tierflow_ledger_charges (
    record_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    usd DOUBLE PRECISION NOT NULL
);
"""

# One connection per (event loop, database) in this process; ledger operations are short.
_CONNECTIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


async def _connection(url: str) -> tuple[Any, asyncio.Lock]:
    import psycopg

    loop = asyncio.get_running_loop()
    conns = _CONNECTIONS.setdefault(loop, {})
    lock = _LOCKS.setdefault(loop, {}).setdefault(url, asyncio.Lock())
    async with lock:
        conn = conns.get(url)
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=False)
            async with conn.transaction():
                # Processes starting together would race on CREATE TABLE IF NOT EXISTS.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tierflow_ledger'))")
                await conn.execute(SCHEMA)
            conns[url] = conn
    return conn, lock


class PostgresLedger(Ledger):
    """The ledger of run ``run_id`` in the database at ``url`` (see the module docstring).

    ``spent_usd`` and ``remaining_usd()`` are this process's latest view of the shared row (for
    questions and traces); every reservation decides on the row itself, in a transaction.
    ``budget_usd`` and ``known`` seed the row when no process has created it yet.
    """

    def __init__(
        self,
        url: str,
        run_id: str,
        budget_usd: float | None,
        spent_usd: float = 0.0,
        known: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(budget_usd, spent_usd)
        self.url, self.run_id = url, run_id
        self._seed = list(known)
        self._seeded = False
        for rec in self._seed:
            self._count(rec)

    async def _txn(self, work: Any) -> Any:
        conn, lock = await _connection(self.url)
        async with lock, conn.transaction():
            cur = conn.cursor()
            # Create (or lock) the run's row; a larger budget here raises it, never lowers it.
            await cur.execute(
                "INSERT INTO tierflow_ledgers (run_id, budget_usd, spent_usd) VALUES (%s, %s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET budget_usd = CASE "
                "WHEN tierflow_ledgers.budget_usd IS NULL OR EXCLUDED.budget_usd IS NULL "
                "THEN COALESCE(tierflow_ledgers.budget_usd, EXCLUDED.budget_usd) "
                "ELSE GREATEST(tierflow_ledgers.budget_usd, EXCLUDED.budget_usd) END "
                "RETURNING budget_usd, spent_usd, (xmax = 0) AS created",
                (self.run_id, self.budget_usd, 0.0 if self._seeded else self._spent),
            )
            budget, spent, created = await cur.fetchone()
            if created and not self._seeded:
                for rec in self._seed:  # the records the seed's spend came from
                    await cur.execute(
                        "INSERT INTO tierflow_ledger_charges (record_id, run_id, usd) "
                        "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        (rec["id"], self.run_id, float(rec["cost_usd"])),
                    )
            self._seeded = True
            out = await work(cur, budget, spent)
            await cur.execute(
                "SELECT budget_usd, spent_usd FROM tierflow_ledgers WHERE run_id = %s",
                (self.run_id,),
            )
            self.budget_usd, self._spent = await cur.fetchone()
            return out

    async def _charge_expired(self, cur: Any) -> float:
        """Turn the run's holds past their TTL into charges at their reservation; USD charged."""
        await cur.execute(
            "WITH gone AS (DELETE FROM tierflow_ledger_holds WHERE run_id = %s AND expires_at < %s "
            "RETURNING call_id, usd) INSERT INTO tierflow_ledger_charges (record_id, run_id, usd) "
            "SELECT 'hold:' || call_id, %s, usd FROM gone ON CONFLICT DO NOTHING RETURNING usd",
            (self.run_id, time.time(), self.run_id),
        )
        charged = sum(float(usd) for (usd,) in await cur.fetchall())
        if charged:
            await self._add(cur, charged)
        return charged

    async def _held_usd(self, cur: Any) -> float:
        await cur.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM tierflow_ledger_holds WHERE run_id = %s",
            (self.run_id,),
        )
        (held,) = await cur.fetchone()
        return float(held)

    async def _add(self, cur: Any, usd: float) -> None:
        await cur.execute(
            "UPDATE tierflow_ledgers SET spent_usd = spent_usd + %s WHERE run_id = %s",
            (usd, self.run_id),
        )

    async def areserve(
        self, tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
    ) -> Reservation | None:
        """Reserve one request's worst case against the shared row (output clamped to fit)."""

        async def work(cur: Any, budget: float | None, spent: float) -> Reservation | None:
            if budget is None:
                return Reservation(uuid.uuid4().hex, None, tier.max_output_tokens)
            spent += await self._charge_expired(cur)
            remaining = budget - spent - await self._held_usd(cur)
            plan = plan_call(tier, messages, tools, remaining)
            if plan is None:
                return None
            call_id = uuid.uuid4().hex
            await cur.execute(
                "INSERT INTO tierflow_ledger_holds (call_id, run_id, usd, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                (call_id, self.run_id, plan[0], time.time() + HOLD_TTL_S),
            )
            with self._lock:  # this process's holds: in_flight and committed_usd
                self._reserved[call_id] = plan[0]
            return Reservation(call_id, plan[0], plan[1])

        result: Reservation | None = await self._txn(work)
        return result

    async def asettle(self, reservation: Reservation, record: Mapping[str, Any] | None) -> None:
        """Replace the hold by what the request cost (None: it was never sent)."""

        async def work(cur: Any, _budget: float | None, _spent: float) -> None:
            await cur.execute(
                "DELETE FROM tierflow_ledger_holds WHERE call_id = %s", (reservation.call_id,)
            )
            await cur.execute(  # the hold expired meanwhile: its record replaces its charge
                "DELETE FROM tierflow_ledger_charges WHERE record_id = %s RETURNING usd",
                (f"hold:{reservation.call_id}",),
            )
            taken = await cur.fetchone()
            if taken is not None:
                await self._add(cur, -float(taken[0]))
            if record is not None:
                await self._charge(cur, record)

        try:
            await self._txn(work)
        finally:
            with self._lock:
                self._reserved.pop(reservation.call_id, None)

    async def aabsorb(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Count records made elsewhere or earlier (by record id, so once).

        Records this process already charged (its own settles) need no round trip.
        """
        pending = [r for r in records if r["id"] not in self._seen]

        async def work(cur: Any, _budget: float | None, _spent: float) -> None:
            for rec in pending:
                await self._charge(cur, rec)

        if pending:
            await self._txn(work)

    async def _charge(self, cur: Any, record: Mapping[str, Any]) -> None:
        await cur.execute(
            "INSERT INTO tierflow_ledger_charges (record_id, run_id, usd) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (record["id"], self.run_id, float(record["cost_usd"])),
        )
        if cur.rowcount:  # a record not counted before, by any process
            await self._add(cur, float(record["cost_usd"]))
        self._seen.add(record["id"])  # in the database now, whoever put it there

    def reserve(self, *args: Any, **kwargs: Any) -> Reservation | None:
        """Not here: the database is asked asynchronously (:meth:`areserve`)."""
        raise TypeError("a PostgresLedger reserves in the database: await areserve(...)")

    def settle(self, *args: Any, **kwargs: Any) -> None:
        """Not here: the database is asked asynchronously (:meth:`asettle`)."""
        raise TypeError("a PostgresLedger settles in the database: await asettle(...)")

    def absorb(self, *args: Any, **kwargs: Any) -> None:
        """Not here: the database is asked asynchronously (:meth:`aabsorb`)."""
        raise TypeError("a PostgresLedger counts records in the database: await aabsorb(...)")
