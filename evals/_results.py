"""Result values of a suite run: one ExampleResult per dataset item, aggregated in SuiteResult."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tierflow.evals.evaluators import mean

__all__ = ["ExampleResult", "SuiteResult", "percentile"]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank-free linear percentile (``q`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class ExampleResult:
    """One dataset item run through one policy.

    ``cost_usd`` is priced at the ``openai`` profile whatever profile ran it. ``subagent_tiers``
    maps each model-calling node (subagent, else node name) to the tier that served most of its
    tasks (the last tier of each task). ``usage`` holds the repriced usage records.
    """

    id: str
    quality: float
    scores: dict[str, float]
    subagent_quality: dict[str, float]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    latency_s: float
    escalations: int
    subagent_tiers: dict[str, str]
    prediction: Any = None
    error: str | None = None
    usage: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # Sum of the example's model request latencies as first measured (a response-cache hit
    # carries its original latency), so a policy's latency does not depend on run order.
    model_latency_s: float = 0.0

    @property
    def paid_usd(self) -> float:
        """Cost of the requests this run sent to a provider (response-cache hits excluded)."""
        from tierflow.cache import paid_usd

        return paid_usd(self.usage)


@dataclass(frozen=True)
class Progress:
    """Where an eval stands, after each example (what a ``progress`` callback receives)."""

    suite: str
    policy: str
    done: int
    total: int
    spent_usd: float  # at openai prices, this policy so far
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        """Seconds left for this policy at the pace so far (None before the first example)."""
        return self.elapsed_s / self.done * (self.total - self.done) if self.done else None


@dataclass(frozen=True)
class SuiteResult:
    """All examples of one suite under one policy, with the aggregates the report shows."""

    suite: str
    policy: str
    profile: str
    examples: tuple[ExampleResult, ...]
    scripted: bool = False  # figures from test doubles (``models=``), not real models

    @property
    def can_escalate(self) -> bool:
        """False for policies that never climb the ladder (all-nano, all-flagship)."""
        from tierflow.tiers import POLICIES

        policy = POLICIES.get(self.policy)
        return policy is None or policy.escalate

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.examples)

    @property
    def quality(self) -> float:
        """Mean example quality in [0, 1]."""
        return mean(e.quality for e in self.examples)

    @property
    def cost_usd(self) -> float:
        """Total cost at openai prices."""
        return round(sum(e.cost_usd for e in self.examples), 10)

    @property
    def cost_per_example_usd(self) -> float:
        """Mean cost per example at openai prices."""
        return self.cost_usd / self.n if self.n else 0.0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return sum(e.input_tokens + e.output_tokens for e in self.examples)

    @property
    def p50_latency_s(self) -> float:
        """Median end-to-end latency per example."""
        return percentile([e.latency_s for e in self.examples], 50)

    @property
    def p95_latency_s(self) -> float:
        """95th percentile end-to-end latency per example."""
        return percentile([e.latency_s for e in self.examples], 95)

    @property
    def escalations(self) -> int:
        """Escalation steps over all examples."""
        return sum(e.escalations for e in self.examples)

    @property
    def escalation_rate(self) -> float | None:
        """Share of examples with at least one escalation; None where escalation is off."""
        if not self.can_escalate:
            return None
        return mean(float(e.escalations > 0) for e in self.examples)

    @property
    def errors(self) -> int:
        """Examples whose run raised."""
        return sum(e.error is not None for e in self.examples)

    def metric(self, name: str) -> float:
        """Mean of one metric over the examples that have it."""
        return mean(e.scores[name] for e in self.examples if name in e.scores)

    def subagents(self) -> dict[str, dict[str, Any]]:
        """Per subagent: serving ``tier``, ``quality``, ``cost_usd`` and ``own_metric``.

        ``tier`` is the majority serving tier; ``own_metric`` is False when ``quality`` is the
        suite quality standing in for a subagent without a metric of its own.
        """
        names = sorted({s for e in self.examples for s in e.subagent_tiers})
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            tiers = Counter(
                e.subagent_tiers[name] for e in self.examples if name in e.subagent_tiers
            )
            own = [e.subagent_quality[name] for e in self.examples if name in e.subagent_quality]
            cost = sum(
                r["cost_usd"] for e in self.examples for r in e.usage
                if (r.get("subagent") or r.get("node")) == name
            )  # fmt: skip
            out[name] = {
                "tier": tiers.most_common(1)[0][0],
                "quality": mean(own) if own else self.quality,
                "own_metric": bool(own),
                "cost_usd": round(cost, 10),
            }
        return out
