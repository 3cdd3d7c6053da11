"""The budget of a run: its ledger (spend plus calls in flight) and the gate before each call.

One :class:`Ledger` per run, shared by the run's parallel branches in this process so that two
concurrent calls cannot both squeeze under the budget. A run is named by ``run_id`` in its
state (stamped by :func:`begin_run` when a graph starts on new input), so a thread reused for a
new run starts from zero. After a restart the ledger is rebuilt once from checkpointed state:
the run's own usage records in a parent graph, or the spend at dispatch (``spent_usd``) plus
the task's own records in a subagent. :func:`end_run` drops it when the run ends.

Each request reserves its worst case before it is sent: an inflated estimate of the input plus
``max_tokens`` output, where ``max_tokens`` is clamped to what the budget left can pay on the
tier, so small budgets still make progress and spend never passes the budget.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from tierflow._memo import IdentityMemo
from tierflow.config import TierSpec
from tierflow.errors import TierflowError
from tierflow.pricing import cost_usd
from tierflow.state import max_budget

__all__ = [
    "Ledger",
    "Reservation",
    "RunIdentityError",
    "begin_run",
    "budget_of",
    "end_run",
    "ledger_for",
    "plan_call",
    "run_id_of",
    "run_spent_usd",
    "share_ledgers",
    "MIN_OUTPUT_TOKENS",
]

# Approximate counts can undershoot real tokenizers (code is dense); the estimate must be an
# upper bound, so it is inflated. Output is bounded exactly by the request's max_tokens.
_INPUT_SAFETY = 1.6
_CHARS_PER_TOKEN = 3.0
# A request that cannot pay for this much output is not worth sending (it could not even
# finish a short tool call), so the gate stops there instead of clamping further.
MIN_OUTPUT_TOKENS = 64
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


@dataclass(frozen=True)
class Reservation:
    """What the gate set aside for one request: its worst case and its output cap."""

    call_id: str
    estimate_usd: float | None  # None: the run has no budget, so nothing was estimated yet
    max_tokens: int

    def worst_case_usd(
        self, tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
    ) -> float:
        """The reserved worst case (estimated now for a run without a budget)."""
        if self.estimate_usd is not None:
            return self.estimate_usd
        plan = plan_call(tier, messages, tools, None)
        return plan[0] if plan else 0.0


def _input_tokens(messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]) -> int:
    tokens: float = count_tokens_approximately(messages, chars_per_token=_CHARS_PER_TOKEN)
    tokens += sum(_schema_chars(t) for t in tools) / _CHARS_PER_TOKEN
    return int(tokens * _INPUT_SAFETY) + 16


# Tool dicts are built once per spec and reused, so their size is measured once.
_schema_chars: IdentityMemo[int] = IdentityMemo(lambda tool: len(json.dumps(tool)))


def plan_call(
    tier: TierSpec,
    messages: Sequence[BaseMessage],
    tools: Sequence[Mapping[str, Any]],
    remaining_usd: float | None,
) -> tuple[float, int] | None:
    """Worst-case cost and output cap of one request, or None when the budget cannot pay it.

    ``max_tokens`` is the tier's ``max_output_tokens`` clamped to what ``remaining_usd`` pays
    after the inflated input estimate; below :data:`MIN_OUTPUT_TOKENS` the call is refused.
    """
    input_tokens = _input_tokens(messages, tools)
    price = tier.ceiling_price  # a priority tier's price, not the standard one
    input_usd = cost_usd(price, input_tokens=input_tokens, output_tokens=0)
    max_tokens = tier.max_output_tokens
    if remaining_usd is not None:
        per_token = price.output / 1_000_000
        affordable = (
            max_tokens if per_token <= 0 else math.floor((remaining_usd - input_usd) / per_token)
        )
        if remaining_usd < input_usd or affordable < min(MIN_OUTPUT_TOKENS, max_tokens):
            return None
        max_tokens = min(max_tokens, affordable)
    estimate = cost_usd(price, input_tokens=input_tokens, output_tokens=max_tokens)
    if remaining_usd is not None and estimate > remaining_usd + 1e-12:
        return None  # rounding in cost_usd; never reserve past the budget
    return estimate, max_tokens


class Ledger:
    """Spend of one run: settled request costs plus reservations of requests in flight.

    ``spent_usd`` is kept as a running total, so every check is O(1) however long the run.
    """

    def __init__(self, budget_usd: float | None, spent_usd: float = 0.0) -> None:
        self.budget_usd = budget_usd
        self._spent = spent_usd
        self._seen: set[str] = set()
        self._reserved: dict[str, float] = {}
        self._lock = threading.Lock()

    def absorb(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Count records made before this ledger existed (idempotent by record id)."""
        with self._lock:
            for rec in records:
                self._count(rec)

    def _count(self, record: Mapping[str, Any]) -> None:
        # Caller holds the lock. A record is counted once, however often it is offered.
        if record["id"] not in self._seen:
            self._seen.add(record["id"])
            self._spent += float(record["cost_usd"])

    @property
    def spent_usd(self) -> float:
        """Cost of every request settled so far."""
        return round(self._spent, 10)

    @property
    def committed_usd(self) -> float:
        """Spent plus the worst case of the requests in flight."""
        with self._lock:
            return round(self._spent + sum(self._reserved.values()), 10)

    def remaining_usd(self) -> float | None:
        """Budget left after spend and reservations; None when the run has no budget."""
        if self.budget_usd is None:
            return None
        return round(self.budget_usd - self.committed_usd, 10)

    def reserve(
        self, tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
    ) -> Reservation | None:
        """Reserve one request's worst case on ``tier`` (output clamped to fit), or None."""
        if self.budget_usd is None:
            # Nothing to check: skip the input estimate (the hot path of unbudgeted runs).
            return Reservation(uuid.uuid4().hex, None, tier.max_output_tokens)
        with self._lock:
            remaining = self.budget_usd - self._spent - sum(self._reserved.values())
            plan = plan_call(tier, messages, tools, remaining)
            if plan is None:
                return None
            call_id = uuid.uuid4().hex
            self._reserved[call_id] = plan[0]
            return Reservation(call_id, plan[0], plan[1])

    def settle(self, reservation: Reservation, record: Mapping[str, Any] | None) -> None:
        """Replace a reservation by what the request cost (None: it was never sent)."""
        with self._lock:
            self._reserved.pop(reservation.call_id, None)
            if record is not None:
                self._count(record)

    @property
    def in_flight(self) -> int:
        """Requests reserved and not settled yet."""
        with self._lock:
            return len(self._reserved)

    def raise_budget(self, budget_usd: float) -> None:
        """Set a larger budget (a human decided to raise it)."""
        with self._lock:
            self.budget_usd = budget_usd

    # The budget gate awaits these; a ledger kept in a database (tierflow.ledger_pg) overrides
    # them, so its round trips never block the event loop.
    async def areserve(
        self, tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]]
    ) -> Reservation | None:
        """:meth:`reserve`, awaitable."""
        return self.reserve(tier, messages, tools)

    async def asettle(self, reservation: Reservation, record: Mapping[str, Any] | None) -> None:
        """:meth:`settle`, awaitable."""
        self.settle(reservation, record)

    async def aabsorb(self, records: Iterable[Mapping[str, Any]]) -> None:
        """:meth:`absorb`, awaitable."""
        self.absorb(records)


_LEDGERS: OrderedDict[str, Ledger] = OrderedDict()
_LEDGERS_LOCK = threading.Lock()


def run_id_of(state: Mapping[str, Any]) -> str | None:
    """The run ``state`` belongs to: its ``run_id``, or a subagent task's ``run["id"]``."""
    run_id = state.get("run_id") or (state.get("run") or {}).get("id")
    return str(run_id) if run_id else None


def budget_of(state: Mapping[str, Any]) -> float | None:
    """The run's budget as ``state`` knows it: a task's budget at dispatch, or larger if raised."""
    return max_budget((state.get("run") or {}).get("budget_usd"), state.get("budget_usd"))


def _run_key(state: Mapping[str, Any]) -> str:
    run_id = run_id_of(state)
    if run_id:
        return run_id
    try:
        from langgraph.config import get_config

        thread = get_config().get("configurable", {}).get("thread_id")
    except RuntimeError:
        thread = None
    if not thread:
        raise RunIdentityError()
    return f"thread:{thread}"


_SHARED_URL: str | None = None


def share_ledgers(url: str | None) -> None:
    """Keep every run's ledger in the PostgreSQL database at ``url`` (None: in this process).

    Replicas (or processes) that run branches of one run then reserve and settle against one
    row, in transactions, so together they cannot pass its budget (:mod:`tierflow.ledger_pg`).
    A ``sqlite:///path`` URL keeps them in that SQLite file instead, so a request in flight
    when the process dies stays charged, as estimated, after a restart
    (:mod:`tierflow.ledger_sqlite`).
    The environment variable ``TIERFLOW_LEDGER_URL`` does the same for servers; the Runner
    does it for a PostgreSQL ``checkpoint_url``.
    """
    global _SHARED_URL
    _SHARED_URL = url


def _shared_url() -> str | None:
    import os

    return _SHARED_URL or os.environ.get("TIERFLOW_LEDGER_URL") or None


def _rebuild(state: Mapping[str, Any], run_key: str) -> Ledger:
    budget = budget_of(state)
    own = state.get("usage") or ()
    if "run" in state:
        # A subagent task: the run's spend when it was dispatched, plus its own records.
        spent, known = float(state["run"].get("spent_usd") or 0.0), list(own)
    else:
        spent, known = 0.0, [r for r in own if r.get("run_id", run_key) == run_key]
    url = _shared_url()
    if url:
        from tierflow.ledger_sqlite import SqliteLedger, sqlite_path

        # What this state knows seeds the shared row only if no ledger created it yet.
        path = sqlite_path(url)
        if path is not None:
            return SqliteLedger(path, run_key, budget, spent, known)
        from tierflow.ledger_pg import PostgresLedger

        return PostgresLedger(url, run_key, budget, spent, known)
    ledger = Ledger(budget, spent)
    ledger.absorb(known)
    return ledger


def ledger_for(state: Mapping[str, Any]) -> Ledger:
    """The ledger of the run ``state`` belongs to (rebuilt from state once per process).

    Raises:
        RunIdentityError: the state has no ``run_id`` and the config no thread id.
    """
    key = _run_key(state)
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get(key)
        if ledger is None:
            ledger = _LEDGERS[key] = _rebuild(state, key)
            while len(_LEDGERS) > _MAX_LEDGERS:
                _LEDGERS.popitem(last=False)
        else:
            _LEDGERS.move_to_end(key)
    budget = budget_of(state)
    # A larger budget in state means a human raised it (possibly in another process); a
    # missing one never lifts the cap of a run that has one.
    if budget is not None and (ledger.budget_usd is None or budget > ledger.budget_usd):
        ledger.raise_budget(float(budget))
    return ledger


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
            _LEDGERS.pop(str(key), None)
