"""A run's budget ledger in a SQLite file, so a call in flight when the process dies stays charged.

The in-process :class:`tierflow.budget.Ledger` is rebuilt from checkpointed state after a
restart, so a request the server answered after the last checkpoint is forgotten: billed by the
provider, absent from the records, its money free again. :class:`SqliteLedger` writes what the
ledger knows before it acts, in three tables of one file:

- ``ledgers``: one row per run (budget, spend), the run's figures once it exists;
- ``holds``: the worst case of each request in flight, written before the request is sent,
  with the ledger instance that made it;
- ``charges``: the cost of each settled request by record id, so a record counts once.

A new ledger of a run (a new process, after a crash) takes the holds that other instances left
as spend: each becomes the charge ``hold:<call id>`` at its reservation, the ``estimated``
billing of a request that may have been processed. Should their owner still be alive and settle,
its settle replaces that charge by the request's record, so nothing counts twice.

Turn it on with ``share_ledgers("sqlite:///path/to/ledger.sqlite")`` (or ``TIERFLOW_LEDGER_URL``);
budgeted runs only: a run without a budget reserves nothing.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from tierflow.budget import Ledger, Reservation, plan_call
from tierflow.config import TierSpec

__all__ = ["SqliteLedger", "SCHEMA", "sqlite_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledgers (
    run_id TEXT PRIMARY KEY, budget_usd REAL, spent_usd REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS holds (
    call_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, usd REAL NOT NULL, owner TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS holds_run ON holds (run_id);
CREATE TABLE IF NOT EXISTS charges (
    record_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, usd REAL NOT NULL);
"""

_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` ledger URL, else None."""
    return Path(url.removeprefix(_PREFIX)) if url.startswith(_PREFIX) else None


class SqliteLedger(Ledger):
    """The ledger of run ``run_id`` in the SQLite file ``path`` (see the module docstring).

    ``budget_usd`` and ``known`` (records in state, whose costs make ``spent_usd``) seed the
    run's row when no ledger created it yet; afterwards the row is the truth.
    """

    def __init__(
        self,
        path: Path | str,
        run_id: str,
        budget_usd: float | None,
        spent_usd: float = 0.0,
        known: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(budget_usd, spent_usd)
        self.path, self.run_id = Path(path), run_id
        self._owner = uuid.uuid4().hex  # this instance, as the owner of its holds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: _txn opens each transaction itself; other threads of the process may
        # settle (the lock serialises them).
        self._db = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._db.executescript(SCHEMA)
        seed = list(known)
        with self._lock:
            for rec in seed:
                self._count(rec)
            self._txn(lambda db, created: self._open(db, created, seed))

    def _txn(self, work: Any) -> Any:
        """``work(db, created)`` in one write transaction on the run's row, which it creates.

        Caller holds ``self._lock``; ``BEGIN IMMEDIATE`` serialises processes on the file.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute("SELECT 1 FROM ledgers WHERE run_id = ?", (self.run_id,))
            created = found.fetchone() is None
            # A larger budget here raises the row's, never lowers it (a human raised it).
            db.execute(
                "INSERT INTO ledgers (run_id, budget_usd, spent_usd) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET budget_usd = CASE "
                "WHEN budget_usd IS NULL OR excluded.budget_usd IS NULL "
                "THEN COALESCE(budget_usd, excluded.budget_usd) "
                "ELSE MAX(budget_usd, excluded.budget_usd) END",
                (self.run_id, self.budget_usd, self._spent),
            )
            out = work(db, created)
            self.budget_usd, self._spent = db.execute(
                "SELECT budget_usd, spent_usd FROM ledgers WHERE run_id = ?", (self.run_id,)
            ).fetchone()
            db.commit()
            return out
        except BaseException:
            db.rollback()
            raise

    def _open(self, db: sqlite3.Connection, created: bool, seed: list[Mapping[str, Any]]) -> None:
        """Seed a new row from state; take the holds other instances left as estimated spend."""
        for rec in seed:  # a new row starts at their spend already; an old one may lack them
            self._charge(db, rec["id"], float(rec["cost_usd"]), count=not created)
        left = db.execute(
            "SELECT call_id, usd FROM holds WHERE run_id = ? AND owner != ?",
            (self.run_id, self._owner),
        ).fetchall()
        for call_id, usd in left:
            db.execute("DELETE FROM holds WHERE call_id = ?", (call_id,))
            self._charge(db, f"hold:{call_id}", float(usd))

    def _add(self, db: sqlite3.Connection, usd: float) -> None:
        db.execute(
            "UPDATE ledgers SET spent_usd = spent_usd + ? WHERE run_id = ?", (usd, self.run_id)
        )

    def _charge(
        self, db: sqlite3.Connection, record_id: str, usd: float, count: bool = True
    ) -> None:
        cur = db.execute(
            "INSERT INTO charges (record_id, run_id, usd) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (record_id, self.run_id, usd),
        )
        if cur.rowcount and count:  # not counted before, by any ledger of this file
            self._add(db, usd)
        self._seen.add(record_id)

    def reserve(
        self, tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
    ) -> Reservation | None:
        """Reserve one request's worst case in the file before it is sent, or None."""

        def work(db: sqlite3.Connection, _created: bool) -> Reservation | None:
            budget, spent, held = db.execute(
                "SELECT budget_usd, spent_usd, (SELECT COALESCE(SUM(usd), 0) FROM holds "
                "WHERE run_id = ?) FROM ledgers WHERE run_id = ?",
                (self.run_id, self.run_id),
            ).fetchone()
            if budget is None:  # nothing to check, and no estimate to hold
                return Reservation(uuid.uuid4().hex, None, tier.max_output_tokens)
            plan = plan_call(tier, messages, tools, budget - spent - held)
            if plan is None:
                return None
            call_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO holds (call_id, run_id, usd, owner) VALUES (?, ?, ?, ?)",
                (call_id, self.run_id, plan[0], self._owner),
            )
            self._reserved[call_id] = plan[0]
            return Reservation(call_id, plan[0], plan[1])

        with self._lock:
            result: Reservation | None = self._txn(work)
            return result

    def settle(self, reservation: Reservation, record: Mapping[str, Any] | None) -> None:
        """Replace the hold by what the request cost (None: it was never sent)."""
        taken_id = f"hold:{reservation.call_id}"

        def work(db: sqlite3.Connection, _created: bool) -> None:
            db.execute("DELETE FROM holds WHERE call_id = ?", (reservation.call_id,))
            taken = db.execute("SELECT usd FROM charges WHERE record_id = ?", (taken_id,))
            usd = taken.fetchone()
            if usd is not None:  # another ledger took this hold as spend: the record replaces it
                db.execute("DELETE FROM charges WHERE record_id = ?", (taken_id,))
                self._add(db, -float(usd[0]))
            if record is not None:
                self._charge(db, record["id"], float(record["cost_usd"]))

        with self._lock:
            try:
                self._txn(work)
            finally:
                self._reserved.pop(reservation.call_id, None)

    def absorb(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Count records made elsewhere or earlier (by record id, so once)."""

        def work(db: sqlite3.Connection, _created: bool) -> None:
            for rec in pending:
                self._charge(db, rec["id"], float(rec["cost_usd"]))

        with self._lock:
            pending = [r for r in records if r["id"] not in self._seen]
            if pending:
                self._txn(work)

    def close(self) -> None:
        """Close the file (holds stay: a hold is settled, or taken by the next ledger)."""
        self._db.close()
