"""The budget of a run: its one ledger (spend plus calls in flight), found by the run's state.

One :class:`Ledger` per run, shared by the run's parallel branches in this process so that two
concurrent calls cannot both squeeze under the budget. A run is named by ``run_id`` in its
state (stamped by :func:`begin_run` when a graph starts on new input), so a thread reused for a
new run starts from zero. After a restart the ledger is rebuilt once from checkpointed state:
the run's own usage records in a parent graph, or the spend at dispatch (``spent_usd``) plus
the task's own records in a subagent. :func:`end_run` drops it when the run ends.

Where the ledger lives is scoped: :func:`share_ledgers` or ``TIERFLOW_LEDGER_URL`` for every run
of the process, else the :func:`ledger_scope` a Runner drives its runs in (a SQLite file beside
its SQLite checkpoints, the database of PostgreSQL ones), else this process
(:mod:`tierflow._ledger`). The reservation itself is :func:`plan_call`'s.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tierflow._ledger import MIN_OUTPUT_TOKENS, Ledger, Reservation, plan_call
from tierflow.errors import TierflowError
from tierflow.state import max_budget

__all__ = [
    "IN_PROCESS",
    "Ledger",
    "Reservation",
    "RunIdentityError",
    "begin_run",
    "budget_of",
    "end_run",
    "finish_run",
    "kept_records",
    "ledger_for",
    "ledger_scope",
    "plan_call",
    "run_id_of",
    "run_spent_usd",
    "share_ledgers",
    "MIN_OUTPUT_TOKENS",
]

# Ledgers of runs that never reached their end (an abandoned interrupt) are evicted oldest
# first beyond this many; a later call of such a run rebuilds its ledger from state.
_MAX_LEDGERS = 1024


class RunIdentityError(TierflowError):
    """A budgeted model call could not tell which run it belongs to."""

    def __init__(self) -> None:
        super().__init__(
            "this model call has no run: its state has no 'run_id' and its config no thread_id. "
            "Start the graph with tierflow's begin node (build_supervisor_graph does; a custom "
            "graph adds tierflow.budget.begin_run as its first node), or invoke it with "
            "config={'configurable': {'thread_id': '...'}}"
        )


# Keyed by (where the ledger lives, run): two scopes never share a ledger object.
_LEDGERS: OrderedDict[tuple[str, str], Ledger] = OrderedDict()
_LEDGERS_LOCK = threading.Lock()
# A ledger URL meaning "this process": overrides a Runner's default like any other URL.
IN_PROCESS = "memory"


def run_id_of(state: Mapping[str, Any]) -> str | None:
    """The run ``state`` belongs to: its ``run_id``, or a subagent task's ``run["id"]``."""
    run_id = state.get("run_id") or (state.get("run") or {}).get("id")
    return str(run_id) if run_id else None


def budget_of(state: Mapping[str, Any]) -> float | None:
    """The run's budget as ``state`` knows it: a task's budget at dispatch, or larger if raised."""
    return max_budget((state.get("run") or {}).get("budget_usd"), state.get("budget_usd"))


def _config_thread() -> str | None:
    try:
        from langgraph.config import get_config

        thread = get_config().get("configurable", {}).get("thread_id")
    except RuntimeError:  # not inside a graph run
        thread = None
    return str(thread) if thread else None


def _run_key(state: Mapping[str, Any], thread: str | None = None) -> str:
    run_id = run_id_of(state)
    if run_id:
        return run_id
    thread = thread or _config_thread()
    if not thread:
        raise RunIdentityError()
    return f"thread:{thread}"


_SHARED_URL: str | None = None
_SCOPE: ContextVar[str | None] = ContextVar("tierflow_ledger_scope", default=None)


def share_ledgers(url: str | None) -> None:
    """Keep every run's ledger in the PostgreSQL database at ``url`` (None: no override).

    Replicas (or processes) that run branches of one run then reserve and settle against one
    row, in transactions, so together they cannot pass its budget (:mod:`tierflow.ledger_pg`).
    A ``sqlite:///path`` URL keeps them in that SQLite file instead, so a request in flight
    when the process dies stays charged, as estimated, after a restart
    (:mod:`tierflow.ledger_sqlite`); :data:`IN_PROCESS` keeps them in this process.
    The environment variable ``TIERFLOW_LEDGER_URL`` does the same for servers. Either
    overrides the scope a Runner drives its runs in (:func:`ledger_scope`).
    """
    global _SHARED_URL
    _SHARED_URL = url


@contextmanager
def ledger_scope(url: str | None) -> Iterator[None]:
    """Within this block (and the tasks it starts), runs keep their ledgers at ``url``.

    What a Runner drives its runs in; :func:`share_ledgers` and ``TIERFLOW_LEDGER_URL``
    override it. Another Runner, or a graph invoked outside any Runner, is not affected.
    """
    token = _SCOPE.set(url)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _shared_url() -> str | None:
    import os

    url = _SHARED_URL or os.environ.get("TIERFLOW_LEDGER_URL") or _SCOPE.get()
    return None if not url or url == IN_PROCESS else url


def _rebuild(state: Mapping[str, Any], run_key: str, url: str | None, thread: str | None) -> Ledger:
    budget = budget_of(state)
    own = state.get("usage") or ()
    if "run" in state:
        # A subagent task: the run's spend when it was dispatched, plus its own records.
        spent, known = float(state["run"].get("spent_usd") or 0.0), list(own)
    else:
        spent, known = 0.0, [r for r in own if r.get("run_id", run_key) == run_key]
    if url:
        from tierflow.ledger_sqlite import SqliteLedger, sqlite_path

        # What this state knows seeds the shared row only if no ledger created it yet.
        path = sqlite_path(url)
        if path is not None:
            return SqliteLedger(path, run_key, budget, spent, known, thread=thread)
        from tierflow.ledger_pg import PostgresLedger

        return PostgresLedger(url, run_key, budget, spent, known, thread=thread)
    ledger = Ledger(budget, spent, run_id=run_key)
    ledger.absorb(known)
    return ledger


def ledger_for(state: Mapping[str, Any]) -> Ledger:
    """The ledger of the run ``state`` belongs to (rebuilt from state once per process).

    Raises:
        RunIdentityError: the state has no ``run_id`` and the config no thread id.
    """
    key, url = _run_key(state), _shared_url()
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get((url or "", key))
        if ledger is None:
            ledger = _rebuild(state, key, url, _config_thread())
            _LEDGERS[(url or "", key)] = ledger
            while len(_LEDGERS) > _MAX_LEDGERS:
                _LEDGERS.popitem(last=False)
        else:
            _LEDGERS.move_to_end((url or "", key))
    budget = budget_of(state)
    # A larger budget in state means a human raised it (possibly in another process); a
    # missing one never lifts the cap of a run that has one.
    if budget is not None and (ledger.budget_usd is None or budget > ledger.budget_usd):
        ledger.raise_budget(float(budget))
    return ledger


async def finish_run(state: Mapping[str, Any], thread_id: str | None) -> list[dict[str, Any]]:
    """End a drive of the run ``state`` belongs to: no hold stays open. The records kept.

    Every hold of the run (and of its thread) still open becomes spend at its reservation,
    with a record (``billing: "estimated"``): its request can no longer settle, and may have
    been processed. Returns the records the ledger keeps, which no node's update carries
    (:func:`kept_records`). A Runner calls this when ``astream`` returns or raises.
    """
    key, url = _run_key(state, thread_id), _shared_url()
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get((url or "", key))
    opened = ledger is None
    if ledger is None:
        if url is None or _absent(url):
            return []  # an in-process ledger already ended, or no ledger was ever written
        ledger = _rebuild(state, key, url, thread_id)  # takes what dead processes left
    try:
        await ledger.afinish()
        return await ledger.akept()
    finally:
        if opened:
            ledger.close()


def _absent(url: str) -> bool:
    from tierflow.ledger_sqlite import sqlite_path

    path = sqlite_path(url)
    return path is not None and not path.exists()


async def kept_records(state: Mapping[str, Any], thread_id: str | None) -> list[dict[str, Any]]:
    """The records of the run's thread that only its ledger has (it opens no new ledger).

    Attempts cancelled after they were sent, and holds taken as spend (a dead process's, or
    one still open when a drive ended). They are charged in the ledger already.
    """
    key, url = _run_key(state, thread_id), _shared_url()
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get((url or "", key))
    if url is None:
        return [] if ledger is None else await ledger.akept()
    from tierflow.ledger_sqlite import read_kept, sqlite_path

    path = sqlite_path(url)
    if path is not None:
        return read_kept(path, key, thread_id)
    from tierflow.ledger_pg import aread_kept

    return await aread_kept(url, key, thread_id)


def run_spent_usd(state: Mapping[str, Any]) -> float:
    """What the run ``state`` belongs to has spent so far (O(1) once its ledger exists)."""
    return ledger_for(state).spent_usd


def begin_run(state: Any, budget_usd: float | None = None) -> dict[str, Any]:
    """A fresh ``run_id``: new input on a thread starts a new run and budget.

    ``budget_usd`` (the run context's) becomes the run's budget when the input sets none.
    """
    fresh: dict[str, Any] = {"run_id": uuid.uuid4().hex}
    if budget_usd is not None and state.get("budget_usd") is None:
        fresh["budget_usd"] = budget_usd
    return fresh


def end_run(state: Mapping[str, Any]) -> None:
    """Forget the ledger of the run ``state`` belongs to (its final node calls this)."""
    key = state.get("run_id")
    if key:
        with _LEDGERS_LOCK:
            _LEDGERS.pop((_shared_url() or "", str(key)), None)
