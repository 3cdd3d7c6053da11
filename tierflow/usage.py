"""Usage records: one per model request, kept in checkpointed state, summarised per tier and node."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tierflow.config import TierConfig
from tierflow.pricing import cost_usd

__all__ = [
    "UsageRecord",
    "merge_usage",
    "spent_usd",
    "summarize",
    "Summary",
    "reprice",
    "as_records",
]


class UsageRecord(BaseModel):
    """One model request (or one failed attempt at one)."""

    model_config = ConfigDict(frozen=True)

    id: str
    node: str
    subagent: str | None = None
    task_id: str | None = None
    tier: str
    model: str
    endpoint: str
    # The tier's reasoning effort (mini and mini-high may share a model), and the service
    # tier that priced the request: the one the provider reported, else the one requested.
    reasoning_effort: str | None = None
    service_tier: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    error: str | None = None
    escalation_reason: str | None = None
    started_at: float = 0.0
    run_id: str | None = None
    # "reported": tokens from the server's usage; "estimated": the request timed out or lost
    # its connection after it was sent, so the server's bill is unknown and the reservation
    # is charged instead.
    billing: Literal["reported", "estimated"] = "reported"
    # A failed attempt's tierflow.protocol.FailureCause: "never sent", "error status" and
    # "other" cost $0; only "possibly processed" is charged (billing "estimated").
    cause: str | None = None
    # Answered from the response cache (tierflow.cache): tokens, cost and latency are the
    # original request's, so figures compare across runs; nothing was paid this time.
    cached_response: bool = False


def _as_record(item: UsageRecord | dict[str, Any]) -> UsageRecord:
    return item if isinstance(item, UsageRecord) else UsageRecord.model_validate(item)


def merge_usage(
    left: Sequence[dict[str, Any]] | None, right: Sequence[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Reducer: append the new records (each request writes its record exactly once).

    Records are kept as plain dicts in state so any checkpointer serializes them. Nothing
    sends the record list down to subagents, so appending needs no de-duplication and a
    merge costs O(new records), not O(all records).
    """
    if not right:
        return list(left or ())
    return [*(left or ()), *right]


def as_records(items: Iterable[UsageRecord | dict[str, Any]]) -> list[UsageRecord]:
    """Records from state (dicts) as UsageRecord objects."""
    return [_as_record(r) for r in items]


def spent_usd(records: Iterable[UsageRecord | dict[str, Any]]) -> float:
    """Total cost of the records."""
    return round(sum(_as_record(r).cost_usd for r in records), 10)


def reprice(
    records: Iterable[UsageRecord | dict[str, Any]], config: TierConfig
) -> list[UsageRecord]:
    """The same records priced with another profile's tiers (matched by tier name).

    Each at the price of the service tier that priced it (flex at the other tier's flex price).
    """
    out = []
    for rec in map(_as_record, records):
        tier = config.tiers.get(rec.tier)
        if tier is None:
            out.append(rec)
            continue
        cost = cost_usd(
            tier.price_for(rec.service_tier),
            input_tokens=rec.input_tokens,
            cached_tokens=rec.cached_tokens,
            output_tokens=rec.output_tokens,
        )
        out.append(rec.model_copy(update={"cost_usd": cost}))
    return out


class Summary(BaseModel):
    """Totals for one group of records (a tier, a node, or everything)."""

    key: str
    requests: int
    errors: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_usd: float
    p50_latency_s: float
    p95_latency_s: float
    escalations: int


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _summary(key: str, recs: list[UsageRecord]) -> Summary:
    ok = [r.latency_s for r in recs if r.error is None]
    return Summary(
        key=key,
        requests=len(recs),
        errors=sum(r.error is not None for r in recs),
        input_tokens=sum(r.input_tokens for r in recs),
        cached_tokens=sum(r.cached_tokens for r in recs),
        output_tokens=sum(r.output_tokens for r in recs),
        cost_usd=round(sum(r.cost_usd for r in recs), 10),
        p50_latency_s=_percentile(ok, 50),
        p95_latency_s=_percentile(ok, 95),
        escalations=sum(r.escalation_reason is not None for r in recs),
    )


def summarize(records: Iterable[UsageRecord | dict[str, Any]], by: str) -> list[Summary]:
    """Group records by ``"tier"``, ``"node"``, ``"subagent"`` or ``"model"``; last row is the total."""
    recs = [_as_record(r) for r in records]
    groups: dict[str, list[UsageRecord]] = {}
    for rec in recs:
        groups.setdefault(str(getattr(rec, by) or "-"), []).append(rec)
    rows = [_summary(k, v) for k, v in sorted(groups.items())]
    rows.append(_summary("TOTAL", recs))
    return rows
