"""Tier choice in one place: declared tier, run policy, escalation climb, budget step-down.

"Where is the nano model chosen?" is answered here. A subagent starts on its declared tier
unless the run's :class:`TierPolicy` says otherwise; escalation climbs the ladder one step at a
time; a budget stop may step down to a cheaper tier. Tests replace the model behind a tier with
``RunContext(models={...})`` (see :class:`tierflow.runtime.Engine`), not the tier itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from tierflow.config import TierConfig
from tierflow.protocol import BudgetAction

__all__ = [
    "TierPolicy",
    "POLICIES",
    "CHEAPEST",
    "TOP",
    "subagent_tier",
    "planner_tier",
    "escalation_tier",
    "cheaper_tier",
    "start_tier",
    "Start",
]

CHEAPEST = "@cheapest"
TOP = "@flagship"


class Start(StrEnum):
    """How a routed task's starting tier is chosen (``TierPolicy.start``)."""

    DECLARED = "declared"  # the policy's subagent_tier, else the subagent's declared tier
    ROUTER = "router"  # the calibrated router's pick for this task (tierflow.calibration)
    RANDOM = "random"  # a coin seeded by the task's id, weighted by TierPolicy.mix


@dataclass(frozen=True)
class TierPolicy:
    """How a run assigns tiers to model-calling nodes (what evals compare).

    Attributes:
        name: label shown in reports.
        subagent_tier: tier for every subagent (``@cheapest``/``@flagship`` allowed); None keeps
            each subagent's declared tier.
        planner_tier: tier of the supervisor and the final answer; None means the flagship.
        escalate: let failing subagent tasks climb the ladder.
        human: ask a human (after the top tier, at the budget gate); off in unattended runs.
        on_budget: what the budget gate does without asking: ``stop`` (the task ends
            ``budget_exhausted``) or ``cheaper`` (step down the ladder until a request fits,
            then stop). None: ask a human when ``human`` is on, else ``stop``.
        start: how graphs with a router node pick a task's first tier (:class:`Start`).
        mix: ``(tier, weight)`` pairs of ``start="random"`` (random routing at a chosen cost).
    """

    name: str = "tiered"
    subagent_tier: str | None = None
    planner_tier: str | None = None
    escalate: bool = True
    human: bool = True
    on_budget: str | None = None
    start: str = Start.DECLARED.value
    mix: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        # Plain values (a policy travels as JSON and lands in checkpoints): a clear
        # ValueError names a bad start; a mix sent as JSON lists becomes pairs.
        object.__setattr__(self, "start", Start(self.start).value)
        object.__setattr__(self, "mix", tuple((str(t), float(w)) for t, w in self.mix))
        if self.start == Start.RANDOM and not self.mix:
            raise ValueError("start='random' needs mix=((tier, weight), ...)")
        allowed = (BudgetAction.STOP, BudgetAction.CHEAPER)
        if self.on_budget is not None and self.on_budget not in allowed:
            raise ValueError(
                f"on_budget={self.on_budget!r}: use 'stop' or 'cheaper' (or None to ask a human)"
            )

    def budget_action(self) -> BudgetAction | None:
        """The declared budget policy, or None when the gate must ask a human."""
        if self.on_budget is not None:
            return BudgetAction(self.on_budget)
        return None if self.human else BudgetAction.STOP

    def subagent(self, declared: str, config: TierConfig) -> str:
        """Starting tier of a subagent."""
        return subagent_tier(self, declared, config)

    def planner(self, config: TierConfig) -> str:
        """Tier of the supervisor and answer nodes."""
        return planner_tier(self, config)


def _resolve(tier: str | None, config: TierConfig) -> str | None:
    if tier == CHEAPEST:
        return config.ladder[0]
    if tier == TOP:
        return config.flagship
    return tier


def subagent_tier(policy: TierPolicy, declared: str, config: TierConfig) -> str:
    """The tier a subagent's task starts on: the policy's choice, else the declared tier."""
    return _resolve(policy.subagent_tier, config) or declared


def start_tier(
    policy: TierPolicy, declared: str, config: TierConfig, *, key: str, routed: str | None
) -> str:
    """The first tier of a routed task (``key`` identifies it; ``routed`` is the router's pick).

    Example:
        >>> from tierflow.config import load_config
        >>> cfg = load_config("openai", require_keys=False)
        >>> start_tier(POLICIES["router"], "mini", cfg, key="q1", routed="nano")
        'nano'
        >>> start_tier(POLICIES["static"], "mini", cfg, key="q1", routed="nano")
        'mini'
    """
    if policy.start == Start.ROUTER and routed:
        return routed
    if policy.start == Start.RANDOM:
        total = sum(w for _, w in policy.mix)
        draw = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * total
        for tier, weight in policy.mix:
            draw -= weight
            if draw <= 0:
                return _resolve(tier, config) or declared
        return _resolve(policy.mix[-1][0], config) or declared
    return subagent_tier(policy, declared, config)


def planner_tier(policy: TierPolicy, config: TierConfig) -> str:
    """The tier of the supervisor and the final answer."""
    return _resolve(policy.planner_tier, config) or config.flagship


def escalation_tier(policy: TierPolicy, tier: str, config: TierConfig) -> str | None:
    """The tier a failing task climbs to, or None (top reached, or escalation is off)."""
    return config.next_tier(tier) if policy.escalate else None


def cheaper_tier(tier: str, config: TierConfig) -> str | None:
    """The tier a budget stop steps down to, or None at the bottom of the ladder."""
    return config.cheaper_tier(tier)


POLICIES: dict[str, TierPolicy] = {
    "tiered": TierPolicy("tiered"),
    "all-flagship": TierPolicy("all-flagship", TOP, TOP, escalate=False, human=False),
    "all-nano": TierPolicy("all-nano", CHEAPEST, CHEAPEST, escalate=False, human=False),
    "cascade": TierPolicy("cascade", CHEAPEST, None, escalate=True, human=False),
    # Benchmark policies (graphs with a router node: tierflow.graphs.benchmarks.specs).
    "all-mini": TierPolicy("all-mini", "mini", "mini", escalate=False, human=False),
    "static": TierPolicy("static", None, None, escalate=False, human=False),
    "router": TierPolicy("router", None, None, escalate=False, human=False, start=Start.ROUTER),
    "router+cascade": TierPolicy(
        "router+cascade", None, None, escalate=True, human=False, start=Start.ROUTER
    ),
    "random": TierPolicy(
        "random",
        None,
        None,
        escalate=False,
        human=False,
        start=Start.RANDOM,
        mix=((CHEAPEST, 0.5), (TOP, 0.5)),
    ),  # fmt: skip
}
