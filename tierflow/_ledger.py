"""The in-process ledger of one run: spend, reservations in flight, and the records it keeps.

Each request reserves its worst case before it is sent: an inflated estimate of the input plus
``max_tokens`` output, where ``max_tokens`` is clamped to what the budget left can pay on the
tier, so small budgets still make progress and spend never passes the budget. The ledgers kept
in a database (:mod:`tierflow.ledger_sqlite`, :mod:`tierflow.ledger_pg`) subclass
:class:`Ledger`; :mod:`tierflow.budget` finds the run's one.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from tierflow._holds import HOLD_PREFIX, held_record
from tierflow._memo import IdentityMemo
from tierflow.config import TierSpec
from tierflow.pricing import cost_usd
from tierflow.protocol import FailureCause

__all__ = ["DRAIN_S", "Ledger", "Reservation", "SETTLE_POLL_S", "plan_call", "MIN_OUTPUT_TOKENS"]

# Approximate counts can undershoot real tokenizers (code is dense); the estimate must be an
# upper bound, so it is inflated. Output is bounded exactly by the request's max_tokens.
_INPUT_SAFETY = 1.6
_CHARS_PER_TOKEN = 3.0
# A request that cannot pay for this much output is not worth sending (it could not even
# finish a short tool call), so the gate stops there instead of clamping further.
MIN_OUTPUT_TOKENS = 64
# At the end of a drive, how long requests that were cancelled get to settle themselves.
DRAIN_S = 5.0
SETTLE_POLL_S = 0.01


@dataclass(frozen=True)
class Reservation:
    """What the gate set aside for one request: its worst case and its output cap."""

    call_id: str
    # None: nothing was estimated yet (an in-process ledger of a run without a budget)
    estimate_usd: float | None
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
    The ledger also keeps the records that no node's update carries (``kept``): attempts
    cancelled after they were sent, and holds taken as spend (:mod:`tierflow._holds`).
    """

    def __init__(
        self, budget_usd: float | None, spent_usd: float = 0.0, run_id: str | None = None
    ) -> None:
        self.budget_usd = budget_usd
        self.run_id = run_id
        self._spent = spent_usd
        self._seen: set[str] = set()
        self._reserved: dict[str, float] = {}
        self._labels: dict[str, Mapping[str, Any]] = {}
        self._kept: dict[str, dict[str, Any]] = {}
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
        self,
        tier: TierSpec,
        messages: Sequence[BaseMessage],
        tools: Sequence[Mapping[str, Any]],
        label: Mapping[str, Any] | None = None,
    ) -> Reservation | None:
        """Reserve one request's worst case on ``tier`` (output clamped to fit), or None.

        ``label`` (:func:`tierflow._holds.hold_label`) names the record the hold becomes if
        it is taken as spend.
        """
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
            self._labels[call_id] = label or {}
            return Reservation(call_id, plan[0], plan[1])

    def settle(
        self, reservation: Reservation, record: Mapping[str, Any] | None, keep: bool = False
    ) -> None:
        """Replace a reservation by what the request cost (None: it was never sent).

        ``keep``: no node's update will carry ``record`` (its call was cancelled), so the
        ledger keeps it (:meth:`kept`).
        """
        with self._lock:
            self._reserved.pop(reservation.call_id, None)
            self._labels.pop(reservation.call_id, None)
            taken = self._kept.pop(f"{HOLD_PREFIX}{reservation.call_id}", None)
            if taken is not None:  # finish took it as spend: the record replaces it
                self._spent -= float(taken["cost_usd"])
            if record is not None:
                self._count(record)
                if keep:
                    self._kept[record["id"]] = dict(record)

    def finish(self) -> None:
        """Take every reservation still held as spend, each with a kept record.

        The run's drive is over, so none of them can settle any more: their requests were
        cancelled in flight, and may have been processed.
        """
        with self._lock:
            for call_id, usd in list(self._reserved.items()):
                label = self._labels.pop(call_id, {})
                cause = FailureCause.CANCELLED_AFTER_SEND
                rec = held_record(label, call_id, usd, cause, self.run_id, None)
                self._count(rec)
                self._kept[rec["id"]] = rec
            self._reserved.clear()

    def kept(self) -> list[dict[str, Any]]:
        """The records only this ledger has (see the class docstring)."""
        with self._lock:
            return list(self._kept.values())

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
        self,
        tier: TierSpec,
        messages: Sequence[BaseMessage],
        tools: Sequence[Mapping[str, Any]],
        label: Mapping[str, Any] | None = None,
    ) -> Reservation | None:
        """:meth:`reserve`, awaitable."""
        return self.reserve(tier, messages, tools, label)

    async def asettle(
        self, reservation: Reservation, record: Mapping[str, Any] | None, keep: bool = False
    ) -> None:
        """:meth:`settle`, awaitable."""
        self.settle(reservation, record, keep)

    async def afinish(self, wait_s: float = DRAIN_S) -> None:
        """:meth:`finish`, awaitable, once requests of this process still settling have.

        A cancelled request settles itself (as cancelled after send) when its task next
        runs, which may be just after the drive that cancelled it ended.
        """
        deadline = time.monotonic() + wait_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_POLL_S)
        self.finish()

    async def akept(self) -> list[dict[str, Any]]:
        """:meth:`kept`, awaitable."""
        return self.kept()

    def close(self) -> None:
        """Release what the ledger holds open (nothing, in this process)."""

    async def aabsorb(self, records: Iterable[Mapping[str, Any]]) -> None:
        """:meth:`absorb`, awaitable."""
        self.absorb(records)
