"""Tier choice in one place: declared tier, run policy, escalation climb, budget step-down.

"Where is the nano model chosen?" is answered here. A subagent starts on its declared tier
unless the run's :class:`TierPolicy` says otherwise; escalation climbs the ladder one step at a
time; a budget stop may step down to a cheaper tier. Tests replace the model behind a tier with
``RunContext(models={...})`` (see :class:`tierflow.runtime.Engine`), not the tier itself.
"""

from __future__ import annotations

from dataclasses import dataclass

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
]

CHEAPEST = "@cheapest"
TOP = "@flagship"


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
    """

    name: str = "tiered"
    subagent_tier: str | None = None
    planner_tier: str | None = None
    escalate: bool = True
    human: bool = True
    on_budget: str | None = None

    def __post_init__(self) -> None:
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
}
