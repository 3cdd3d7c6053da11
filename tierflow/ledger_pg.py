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
  counts once however many processes offer it (a replayed phase, a rebuilt ledger);
- ``tierflow_ledger_records``: the usage records no checkpoint will hold: expired holds taken
  as spend, attempts cancelled after they were sent, and this process's holds still open when
  a drive of the run ended (:meth:`PostgresLedger.afinish`; :mod:`tierflow._holds`).

A Runner with a PostgreSQL ``checkpoint_url`` keeps its runs' ledgers there;
:func:`tierflow.budget.share_ledgers` or ``TIERFLOW_LEDGER_URL`` choose a database for every run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from tierflow._holds import HOLD_PREFIX, held_record
from tierflow._ledger import DRAIN_S, SETTLE_POLL_S, Ledger, Reservation, plan_call
from tierflow.config import TierSpec
from tierflow.protocol import FailureCause

__all__ = ["PostgresLedger", "HOLD_TTL_S", "SCHEMA", "aread_kept"]

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
ALTER TABLE tierflow_ledger_holds ADD COLUMN IF NOT EXISTS thread TEXT;
ALTER TABLE tierflow_ledger_holds ADD COLUMN IF NOT EXISTS label TEXT;
ALTER TABLE tierflow_ledger_holds ADD COLUMN IF NOT EXISTS at DOUBLE PRECISION;
CREATE TABLE IF NOT EXISTS tierflow_ledger_records (
    record_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    thread TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tierflow_ledger_records_run ON tierflow_ledger_records (run_id);
CREATE INDEX IF NOT EXISTS tierflow_ledger_records_thread ON tierflow_ledger_records (thread);
"""
_KEPT = (
    "SELECT body FROM tierflow_ledger_records WHERE run_id = %s OR thread = %s ORDER BY record_id"
)

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


async def aread_kept(url: str, run_id: str, thread: str | None) -> list[dict[str, Any]]:
    """The records the database keeps for ``run_id`` or ``thread`` (no hold is taken)."""
    conn, lock = await _connection(url)
    async with lock, conn.transaction():
        cur = await conn.execute(_KEPT, (run_id, thread))
        return [json.loads(body) for (body,) in await cur.fetchall()]


class PostgresLedger(Ledger):
    """The ledger of run ``run_id`` in the database at ``url`` (see the module docstring).

    ``spent_usd`` and ``remaining_usd()`` are this process's latest view of the shared row (for
    questions and traces); every reservation decides on the row itself, in a transaction.
    ``budget_usd`` and ``known`` seed the row when no process has created it yet.
    """

    run_id: str  # always named here

    def __init__(
        self,
        url: str,
        run_id: str,
        budget_usd: float | None,
        spent_usd: float = 0.0,
        known: Iterable[Mapping[str, Any]] = (),
        thread: str | None = None,
    ) -> None:
        super().__init__(budget_usd, spent_usd, run_id)
        self.url, self.run_id, self.thread = url, run_id, thread
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
            "DELETE FROM tierflow_ledger_holds WHERE run_id = %s AND expires_at < %s "
            "RETURNING call_id, usd, thread, label, at",
            (self.run_id, time.time()),
        )
        return await self._take(cur, await cur.fetchall(), FailureCause.DIED_AFTER_SEND)

    async def _take(self, cur: Any, rows: list[Any], cause: FailureCause) -> float:
        """Charge deleted holds at their reservation, each with a kept record; USD charged."""
        charged = 0.0
        for call_id, usd, thread, label, at in rows:
            rec = held_record(json.loads(label or "{}"), call_id, float(usd), cause,
                              self.run_id, at)  # fmt: skip
            await cur.execute(
                "INSERT INTO tierflow_ledger_charges (record_id, run_id, usd) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (rec["id"], self.run_id, float(usd)),
            )
            if cur.rowcount:
                charged += float(usd)
                await self._keep(cur, rec, thread)
        if charged:
            await self._add(cur, charged)
        return charged

    async def _keep(self, cur: Any, rec: Mapping[str, Any], thread: str | None) -> None:
        await cur.execute(
            "INSERT INTO tierflow_ledger_records (record_id, run_id, thread, body) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (rec["id"], self.run_id, thread, json.dumps(dict(rec))),
        )

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
        self,
        tier: TierSpec,
        messages: Sequence[BaseMessage],
        tools: Sequence[Mapping[str, Any]],
        label: Mapping[str, Any] | None = None,
    ) -> Reservation | None:
        """Reserve one request's worst case against the shared row (output clamped to fit).

        A run without a budget holds its worst case too (nothing is refused then).
        """

        async def work(cur: Any, budget: float | None, spent: float) -> Reservation | None:
            spent += await self._charge_expired(cur)
            remaining = None if budget is None else budget - spent - await self._held_usd(cur)
            plan = plan_call(tier, messages, tools, remaining)
            if plan is None:
                return None
            call_id, now = uuid.uuid4().hex, time.time()
            await cur.execute(
                "INSERT INTO tierflow_ledger_holds (call_id, run_id, usd, expires_at, thread, "
                "label, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (call_id, self.run_id, plan[0], now + HOLD_TTL_S, self.thread,
                 json.dumps(dict(label or {})), now),
            )  # fmt: skip
            with self._lock:  # this process's holds: in_flight and committed_usd
                self._reserved[call_id] = plan[0]
            return Reservation(call_id, plan[0], plan[1])

        result: Reservation | None = await self._txn(work)
        return result

    async def asettle(
        self, reservation: Reservation, record: Mapping[str, Any] | None, keep: bool = False
    ) -> None:
        """Replace the hold by what the request cost (None: it was never sent).

        ``keep``: no node's update will carry ``record``, so the database keeps it.
        """
        taken_id = f"{HOLD_PREFIX}{reservation.call_id}"

        async def work(cur: Any, _budget: float | None, _spent: float) -> None:
            await cur.execute(
                "DELETE FROM tierflow_ledger_holds WHERE call_id = %s", (reservation.call_id,)
            )
            await cur.execute(  # the hold was taken meanwhile: its record replaces its charge
                "DELETE FROM tierflow_ledger_charges WHERE record_id = %s RETURNING usd",
                (taken_id,),
            )
            taken = await cur.fetchone()
            if taken is not None:
                await self._add(cur, -float(taken[0]))
                await cur.execute(
                    "DELETE FROM tierflow_ledger_records WHERE record_id = %s", (taken_id,)
                )
            if record is not None:
                await self._charge(cur, record)
                if keep:
                    await self._keep(cur, record, self.thread)

        try:
            await self._txn(work)
        finally:
            with self._lock:
                self._reserved.pop(reservation.call_id, None)

    async def afinish(self, wait_s: float = DRAIN_S) -> None:
        """Take this process's holds of the run still open, and expired ones, as spend.

        The drive is over, so this process's cannot settle any more (cancelled in flight).
        Another replica's may still settle: they are taken only once expired.
        """
        deadline = time.monotonic() + wait_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_POLL_S)
        with self._lock:
            own = list(self._reserved)

        async def work(cur: Any, _budget: float | None, _spent: float) -> None:
            await self._charge_expired(cur)
            if not own:
                return
            await cur.execute(
                "DELETE FROM tierflow_ledger_holds WHERE call_id = ANY(%s) "
                "RETURNING call_id, usd, thread, label, at",
                (own,),
            )
            await self._take(cur, await cur.fetchall(), FailureCause.CANCELLED_AFTER_SEND)

        try:
            await self._txn(work)
        finally:
            with self._lock:
                for call_id in own:
                    self._reserved.pop(call_id, None)

    async def akept(self) -> list[dict[str, Any]]:
        """The records the database keeps for the run and its thread."""
        return await aread_kept(self.url, self.run_id, self.thread)

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

    def finish(self) -> None:
        """Not here: the database is asked asynchronously (:meth:`afinish`)."""
        raise TypeError("a PostgresLedger finishes in the database: await afinish()")

    def kept(self) -> list[dict[str, Any]]:
        """Not here: the database is asked asynchronously (:meth:`akept`)."""
        raise TypeError("a PostgresLedger reads its records in the database: await akept()")
