"""Budget guard: estimate each call's worst-case cost and refuse calls that could overspend.

Parallel branches of one run share a :class:`Ledger` (one per thread id, in process), so two
concurrent calls cannot both squeeze under the budget. The ledger is rebuilt from the usage
records in checkpointed state after a restart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from tierflow.config import TierSpec
from tierflow.pricing import cost_usd
from tierflow.usage import UsageRecord

__all__ = ["Ledger", "ledger_for", "estimate_call_usd"]

# Approximate counts can undershoot real tokenizers (code is dense); the estimate must be an
# upper bound, so it is inflated. Output is bounded exactly by max_output_tokens.
_INPUT_SAFETY = 1.6
_CHARS_PER_TOKEN = 3.0


def estimate_call_usd(
    tier: TierSpec, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] = ()
) -> float:
    """Worst-case cost of one request on ``tier``: inflated input estimate, full output budget."""
    tokens: float = count_tokens_approximately(messages, chars_per_token=_CHARS_PER_TOKEN)
    tokens += len(json.dumps(list(tools))) / _CHARS_PER_TOKEN
    input_tokens = int(tokens * _INPUT_SAFETY) + 16
    return cost_usd(tier.price, input_tokens=input_tokens, output_tokens=tier.max_output_tokens)


class Ledger:
    """Spend of one run: recorded usage plus reservations of calls in flight."""

    def __init__(self, budget_usd: float | None) -> None:
        self.budget_usd = budget_usd
        self._records: dict[str, float] = {}
        self._reserved: dict[str, float] = {}
        self._lock = threading.Lock()

    def absorb(self, records: Iterable[UsageRecord | dict[str, Any]]) -> None:
        """Learn records from checkpointed state (idempotent)."""
        with self._lock:
            for rec in records:
                rid = rec.id if isinstance(rec, UsageRecord) else rec["id"]
                cost = rec.cost_usd if isinstance(rec, UsageRecord) else rec["cost_usd"]
                self._records[rid] = cost

    @property
    def spent_usd(self) -> float:
        """Cost of every request recorded so far."""
        with self._lock:
            return round(sum(self._records.values()), 10)

    @property
    def committed_usd(self) -> float:
        """Spent plus the worst case of the calls in flight."""
        with self._lock:
            return round(sum(self._records.values()) + sum(self._reserved.values()), 10)

    def remaining_usd(self) -> float | None:
        """Budget left after spend and reservations; None when the run has no budget."""
        if self.budget_usd is None:
            return None
        return round(self.budget_usd - self.committed_usd, 10)

    def try_reserve(self, call_id: str, estimate_usd: float) -> bool:
        """Reserve ``estimate_usd`` for a call unless it could cross the budget."""
        with self._lock:
            committed = sum(self._records.values()) + sum(self._reserved.values())
            if self.budget_usd is not None and committed + estimate_usd > self.budget_usd + 1e-12:
                return False
            self._reserved[call_id] = estimate_usd
            return True

    def settle(self, call_id: str, record: UsageRecord | None) -> None:
        """Replace a reservation by what the call really cost (or drop it)."""
        with self._lock:
            self._reserved.pop(call_id, None)
            if record is not None:
                self._records[record.id] = record.cost_usd

    def raise_budget(self, budget_usd: float | None) -> None:
        """Set a new budget (a human decided to raise it)."""
        with self._lock:
            self.budget_usd = budget_usd


_LEDGERS: dict[str, Ledger] = {}
_LEDGERS_LOCK = threading.Lock()


def ledger_for(thread_id: str, budget_usd: float | None) -> Ledger:
    """The process-wide ledger of a run; a larger budget from state replaces a smaller one."""
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get(thread_id)
        if ledger is None:
            ledger = _LEDGERS[thread_id] = Ledger(budget_usd)
        elif budget_usd is None or (
            ledger.budget_usd is not None and budget_usd > ledger.budget_usd
        ):
            ledger.raise_budget(budget_usd)
        return ledger
