"""A run's budget ledger in a SQLite file, so a call in flight when the process dies stays charged.

The in-process :class:`tierflow.budget.Ledger` is rebuilt from checkpointed state after a
restart, so a request the server answered after the last checkpoint is forgotten: billed by the
provider, absent from the records, its money free again. :class:`SqliteLedger` writes what the
ledger knows before it acts, in four tables of one file:

- ``ledgers``: one row per run (budget, spend), the run's figures once it exists;
- ``holds``: the worst case of each request in flight, written before the request is sent,
  with the ledger instance that made it, the run's thread and what the request is for;
- ``charges``: the cost of each settled request by record id, so a record counts once;
- ``records``: the usage records no checkpoint will hold: holds taken as spend, and attempts
  cancelled after they were sent (:mod:`tierflow._holds`).

A new ledger of a run (a new process, after a crash) takes the holds that other instances left
as spend: each becomes the charge ``hold:<call id>`` at its reservation, the ``estimated``
billing of a request that may have been processed, and a record of the same id. Should their
owner still be alive and settle, its settle replaces that charge and record by the request's
record, so nothing counts twice. When a drive of the run ends (:meth:`SqliteLedger.finish`),
the holds of the run and of its thread still open are taken the same way.

A Runner keeps this file beside its SQLite checkpoints (``ledger.sqlite``);
``share_ledgers("sqlite:///path/to/ledger.sqlite")`` or ``TIERFLOW_LEDGER_URL`` choose one file
for every run of the process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from tierflow._holds import HOLD_PREFIX, held_record, hold_cause
from tierflow._ledger import Ledger, Reservation, plan_call
from tierflow.config import TierSpec

__all__ = ["SqliteLedger", "SCHEMA", "read_kept", "sqlite_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledgers (
    run_id TEXT PRIMARY KEY, budget_usd REAL, spent_usd REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS holds (
    call_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, usd REAL NOT NULL, owner TEXT NOT NULL,
    thread TEXT, label TEXT, at REAL);
CREATE INDEX IF NOT EXISTS holds_run ON holds (run_id);
CREATE TABLE IF NOT EXISTS charges (
    record_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, usd REAL NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, thread TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_run ON records (run_id);
CREATE INDEX IF NOT EXISTS records_thread ON records (thread);
"""
# Columns of ``holds`` that a file made by an older tierflow lacks (added when it is opened).
_HOLD_COLUMNS = ("thread TEXT", "label TEXT", "at REAL")
_KEPT = "SELECT body FROM records WHERE run_id = ? OR thread = ? ORDER BY rowid"

_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` ledger URL, else None."""
    return Path(url.removeprefix(_PREFIX)) if url.startswith(_PREFIX) else None


def read_kept(path: Path | str, run_id: str, thread: str | None) -> list[dict[str, Any]]:
    """The records the file keeps for ``run_id`` or ``thread``, read only (no hold is taken)."""
    path = Path(path)
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [json.loads(body) for (body,) in db.execute(_KEPT, (run_id, thread))]
    except sqlite3.OperationalError:  # a file made before it kept records
        return []
    finally:
        db.close()


def _prepare(db: sqlite3.Connection) -> None:
    """The tables, with the columns an older file lacks (each added once, by one process)."""
    db.executescript(SCHEMA)
    db.execute("BEGIN IMMEDIATE")
    try:
        have = {row[1] for row in db.execute("PRAGMA table_info(holds)")}
        for column in _HOLD_COLUMNS:
            if column.split()[0] not in have:
                db.execute(f"ALTER TABLE holds ADD COLUMN {column}")
        db.execute("CREATE INDEX IF NOT EXISTS holds_thread ON holds (thread)")
        db.commit()
    except BaseException:
        db.rollback()
        raise


class SqliteLedger(Ledger):
    """The ledger of run ``run_id`` in the SQLite file ``path`` (see the module docstring).

    ``budget_usd`` and ``known`` (records in state, whose costs make ``spent_usd``) seed the
    run's row when no ledger created it yet; afterwards the row is the truth. ``thread`` is
    the run's thread: a drive's end takes the holds of every run of it.
    """

    run_id: str  # always named here

    def __init__(
        self,
        path: Path | str,
        run_id: str,
        budget_usd: float | None,
        spent_usd: float = 0.0,
        known: Iterable[Mapping[str, Any]] = (),
        thread: str | None = None,
    ) -> None:
        super().__init__(budget_usd, spent_usd, run_id)
        self.path, self.run_id, self.thread = Path(path), run_id, thread
        # This instance, as the owner of its holds; the pid tells who takes one why.
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: _txn opens each transaction itself; other threads of the process may
        # settle (the lock serialises them).
        self._db = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        _prepare(self._db)
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
        self._take(db, "run_id = ? AND owner != ?", (self.run_id, self._owner))

    def _take(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
        """Take the holds ``where`` selects as spend at their reservation, each with a record."""
        rows = db.execute(
            f"SELECT call_id, run_id, usd, owner, thread, label, at FROM holds WHERE {where}", args
        ).fetchall()
        pid = os.getpid()
        for call_id, run_id, usd, owner, thread, label, at in rows:
            db.execute("DELETE FROM holds WHERE call_id = ?", (call_id,))
            cause = hold_cause(owner, pid)
            rec = held_record(json.loads(label or "{}"), call_id, float(usd), cause, run_id, at)
            self._charge(db, rec["id"], float(usd), run_id=run_id)
            self._keep(db, rec, run_id, thread)
            self._reserved.pop(call_id, None)

    def _keep(
        self, db: sqlite3.Connection, rec: Mapping[str, Any], run_id: str, thread: str | None
    ) -> None:
        db.execute(
            "INSERT INTO records (record_id, run_id, thread, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (rec["id"], run_id, thread, json.dumps(dict(rec))),
        )

    def _add(self, db: sqlite3.Connection, usd: float, run_id: str | None = None) -> None:
        db.execute(
            "UPDATE ledgers SET spent_usd = spent_usd + ? WHERE run_id = ?",
            (usd, run_id or self.run_id),
        )

    def _charge(
        self,
        db: sqlite3.Connection,
        record_id: str,
        usd: float,
        count: bool = True,
        run_id: str | None = None,
    ) -> None:
        cur = db.execute(
            "INSERT INTO charges (record_id, run_id, usd) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (record_id, run_id or self.run_id, usd),
        )
        if cur.rowcount and count:  # not counted before, by any ledger of this file
            self._add(db, usd, run_id)
        self._seen.add(record_id)

    def reserve(
        self,
        tier: TierSpec,
        messages: Sequence[BaseMessage],
        tools: Sequence[Mapping[str, Any]],
        label: Mapping[str, Any] | None = None,
    ) -> Reservation | None:
        """Reserve one request's worst case in the file before it is sent, or None.

        A run without a budget holds its worst case too (nothing is refused then), so its
        request in flight when the process dies stays charged as well.
        """

        def work(db: sqlite3.Connection, _created: bool) -> Reservation | None:
            budget, spent, held = db.execute(
                "SELECT budget_usd, spent_usd, (SELECT COALESCE(SUM(usd), 0) FROM holds "
                "WHERE run_id = ?) FROM ledgers WHERE run_id = ?",
                (self.run_id, self.run_id),
            ).fetchone()
            left = None if budget is None else budget - spent - held
            plan = plan_call(tier, messages, tools, left)
            if plan is None:
                return None
            call_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO holds (call_id, run_id, usd, owner, thread, label, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (call_id, self.run_id, plan[0], self._owner, self.thread,
                 json.dumps(dict(label or {})), time.time()),
            )  # fmt: skip
            self._reserved[call_id] = plan[0]
            return Reservation(call_id, plan[0], plan[1])

        with self._lock:
            result: Reservation | None = self._txn(work)
            return result

    def settle(
        self, reservation: Reservation, record: Mapping[str, Any] | None, keep: bool = False
    ) -> None:
        """Replace the hold by what the request cost (None: it was never sent).

        ``keep``: no node's update will carry ``record``, so the file keeps it.
        """
        taken_id = f"{HOLD_PREFIX}{reservation.call_id}"

        def work(db: sqlite3.Connection, _created: bool) -> None:
            db.execute("DELETE FROM holds WHERE call_id = ?", (reservation.call_id,))
            taken = db.execute("SELECT usd FROM charges WHERE record_id = ?", (taken_id,))
            usd = taken.fetchone()
            if usd is not None:  # another ledger took this hold as spend: the record replaces it
                db.execute("DELETE FROM charges WHERE record_id = ?", (taken_id,))
                db.execute("DELETE FROM records WHERE record_id = ?", (taken_id,))
                self._add(db, -float(usd[0]))
            if record is not None:
                self._charge(db, record["id"], float(record["cost_usd"]))
                if keep:
                    self._keep(db, record, self.run_id, self.thread)

        with self._lock:
            try:
                self._txn(work)
            finally:
                self._reserved.pop(reservation.call_id, None)

    def finish(self) -> None:
        """Take every hold of the run, and of its thread, still open as estimated spend.

        The drive is over: none of them can settle any more. This process's own were
        cancelled in flight; another process's belong to one that died.
        """
        with self._lock:
            self._txn(lambda db, _created: self._take(db, "run_id = ? OR thread = ?",
                                                      (self.run_id, self.thread)))  # fmt: skip

    def kept(self) -> list[dict[str, Any]]:
        """The records the file keeps for the run and its thread (see the module docstring)."""
        with self._lock:
            rows = self._db.execute(_KEPT, (self.run_id, self.thread)).fetchall()
        return [json.loads(body) for (body,) in rows]

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
