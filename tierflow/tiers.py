"""Tier choice in one place: a site's first tier, the escalation climb, the budget step-down.

"Where is the nano model chosen?" is answered here, and nowhere else: every node that needs a
tier describes where it stands as a :class:`Site` and asks :func:`start_tier`; a failing task
asks :func:`climb` for the next tier up; the budget gate asks :func:`step_down` for the next
one down. Tests replace the model behind a tier with ``RunContext(models={...})`` (see
:class:`tierflow.runtime.Engine`), not the tier itself.

Precedence of :func:`start_tier`, first match wins (one list for every site; the site's kind
says which rows apply, see ``_RULES``):

1. The router's pick (``Site.routed``), when the policy starts from the router
   (``start="router"``), on routed sites (a cascade's first tier).
2. The policy's coin seeded by ``Site.key`` (``start="random"``), on routed sites.
3. The declared tier, on sites where it wins (``Site.declared_wins``: the supervisor's planner
   and answer, the router node; not a draft answer's ``answer_tier``).
4. The policy's forced tier for the site's role: ``subagent_tier`` on subagent and cascade
   sites, ``planner_tier`` on planner, answer, draft and router sites (``@cheapest``/``@flagship``
   allowed).
5. The declared tier: the calibration's ``start_tier`` when one is given, else ``Site.declared``.
6. The top of the ladder (the flagship).

Why rows 3 and 5 both exist: a subagent's tier is required, the designer's default, and
policies exist to override it (``all-nano`` runs every subagent on nano to price the run
against ``all-flagship``); a supervisor's ``tier`` is optional and None by default, so a
supervisor that sets one pins it on purpose, and no policy moves it.

:func:`climb` and :func:`step_down` move one step along the calibration's ladder when it has
one, else the profile's; a tier that is not on that ladder has nowhere to go (None), as the
top and the bottom have not. :func:`climb` is None when the policy does not escalate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from tierflow.config import TierConfig
from tierflow.errors import SpecError
from tierflow.protocol import BudgetAction

if TYPE_CHECKING:
    from tierflow.calibration import SubagentCalibration

__all__ = [
    "TierPolicy",
    "POLICIES",
    "CHEAPEST",
    "TOP",
    "Site",
    "SiteKind",
    "Start",
    "start_tier",
    "climb",
    "step_down",
    "subagent_tier",
    "planner_tier",
    "escalation_tier",
    "cheaper_tier",
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
        # error names a bad start; a mix sent as JSON lists becomes pairs.
        try:
            object.__setattr__(self, "start", Start(self.start).value)
        except ValueError:
            known = ", ".join(repr(s.value) for s in Start)
            raise SpecError(f"TierPolicy start={self.start!r}: use one of {known}") from None
        object.__setattr__(self, "mix", tuple((str(t), float(w)) for t, w in self.mix))
        if self.start == Start.RANDOM and not self.mix:
            raise SpecError("TierPolicy start='random' needs mix=((tier, weight), ...)")
        allowed = (BudgetAction.STOP, BudgetAction.CHEAPER)
        if self.on_budget is not None and self.on_budget not in allowed:
            raise SpecError(
                f"TierPolicy on_budget={self.on_budget!r}: use 'stop' or 'cheaper' "
                "(or None to ask a human)"
            )

    def budget_action(self) -> BudgetAction | None:
        """The declared budget policy, or None when the gate must ask a human."""
        if self.on_budget is not None:
            return BudgetAction(self.on_budget)
        return None if self.human else BudgetAction.STOP

    def subagent(self, declared: str, config: TierConfig) -> str:
        """Starting tier of a subagent (:func:`start_tier` at a subagent site)."""
        return start_tier(Site(SiteKind.SUBAGENT, declared), self, config)

    def planner(self, config: TierConfig) -> str:
        """Tier of the supervisor and answer nodes (:func:`start_tier` at a planner site)."""
        return start_tier(Site(SiteKind.PLANNER), self, config)


class SiteKind(StrEnum):
    """Which kind of node needs a tier (the rows of the precedence that apply, ``_RULES``)."""

    SUBAGENT = "subagent"  # a subagent's task, on the tier it was not sent with
    CASCADE = "cascade"  # a cascade's routed task: its first tier
    PLANNER = "planner"  # the supervisor's decision
    ANSWER = "answer"  # the supervisor's final answer
    DRAFT = "draft"  # the final answer's first try on a cheaper declared tier (answer_tier)
    ROUTER = "router"  # the router node's one call


@dataclass(frozen=True)
class _Rule:
    forced: str  # the TierPolicy field that forces the tier of this kind of site
    declared_wins: bool  # the declared tier beats the policy's forced tier (row 3)
    routed: bool  # the policy's start (router pick, seeded coin) applies (rows 1-2)


# The one place where sites differ (see the module docstring for why).
_RULES: dict[SiteKind, _Rule] = {
    SiteKind.SUBAGENT: _Rule("subagent_tier", declared_wins=False, routed=False),
    SiteKind.CASCADE: _Rule("subagent_tier", declared_wins=False, routed=True),
    SiteKind.PLANNER: _Rule("planner_tier", declared_wins=True, routed=False),
    SiteKind.ANSWER: _Rule("planner_tier", declared_wins=True, routed=False),
    # A draft's declared tier is a cost choice the policy may override, as a subagent's is
    # (all-flagship drafts on the flagship, so the comparison stays fair).
    SiteKind.DRAFT: _Rule("planner_tier", declared_wins=False, routed=False),
    SiteKind.ROUTER: _Rule("planner_tier", declared_wins=True, routed=False),
}


@dataclass(frozen=True)
class Site:
    """Where a tier is needed: what :func:`start_tier` decides from, besides the run's policy.

    Attributes:
        kind: the kind of node (:class:`SiteKind`; a plain string is accepted).
        declared: the tier the node's declaration names (a subagent's ``tier``, required on
            subagent and cascade sites; a supervisor's optional ``tier``).
        key: what seeds the ``start="random"`` coin (a cascade task's id).
        routed: the calibrated router's pick for this task, or None.
    """

    kind: SiteKind
    declared: str | None = None
    key: str = ""
    routed: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", SiteKind(self.kind))
        except ValueError:
            known = ", ".join(k.value for k in SiteKind)
            raise SpecError(f"Site kind={self.kind!r}: use one of {known}") from None
        if not self.declared and _RULES[self.kind].forced == "subagent_tier":
            raise SpecError(
                f"a {self.kind.value} site needs its declared tier: pass "
                f"Site({self.kind.value!r}, declared=<the subagent's tier>)"
            )

    @property
    def declared_wins(self) -> bool:
        """Whether the declared tier beats the policy's forced tier at this kind of site."""
        return _RULES[self.kind].declared_wins


def _resolve(tier: str | None, config: TierConfig) -> str | None:
    if tier == CHEAPEST:
        return config.ladder[0]
    if tier == TOP:
        return config.flagship
    return tier


def _coin(policy: TierPolicy, key: str, config: TierConfig) -> str | None:
    """The tier the ``start="random"`` coin gives the task ``key`` (weighted by ``mix``)."""
    total = sum(w for _, w in policy.mix)
    draw = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF * total
    for tier, weight in policy.mix:
        draw -= weight
        if draw <= 0:
            return _resolve(tier, config)
    return _resolve(policy.mix[-1][0], config)


def start_tier(
    site: Site,
    policy: TierPolicy,
    config: TierConfig,
    calibration: SubagentCalibration | None = None,
) -> str:
    """The tier ``site`` starts on under ``policy`` (precedence: the module docstring).

    Args:
        site: where the tier is needed.
        policy: the run's tier policy.
        config: the profile (its ladder resolves ``@cheapest``/``@flagship``).
        calibration: the subagent's calibration, if one is loaded: its ``start_tier`` replaces
            the declared tier.

    Returns:
        A tier name of the profile.

    Example:
        >>> from tierflow.config import load_config
        >>> cfg = load_config("openai", require_keys=False)
        >>> task = Site(SiteKind.SUBAGENT, declared="mini")
        >>> start_tier(task, POLICIES["tiered"], cfg), start_tier(task, POLICIES["all-nano"], cfg)
        ('mini', 'nano')
        >>> routed = Site(SiteKind.CASCADE, declared="mini", key="q1", routed="nano")
        >>> start_tier(routed, POLICIES["router"], cfg), start_tier(routed, POLICIES["static"], cfg)
        ('nano', 'mini')
        >>> pinned = Site(SiteKind.PLANNER, declared="mini")
        >>> start_tier(pinned, POLICIES["all-nano"], cfg), start_tier(Site("planner"), POLICIES["tiered"], cfg)
        ('mini', 'flagship')
    """
    rule = _RULES[site.kind]
    declared = (calibration.start_tier if calibration is not None else None) or site.declared
    if rule.routed and policy.start == Start.ROUTER and site.routed:
        return site.routed
    if rule.routed and policy.start == Start.RANDOM:
        return _coin(policy, site.key, config) or declared or config.flagship
    if rule.declared_wins and declared:
        return declared
    forced = _resolve(getattr(policy, rule.forced), config)
    return forced or declared or config.flagship


def _ladder(config: TierConfig, calibration: SubagentCalibration | None) -> Sequence[str]:
    return (calibration.ladder if calibration is not None else None) or config.ladder


def climb(
    tier: str,
    policy: TierPolicy,
    config: TierConfig,
    calibration: SubagentCalibration | None = None,
) -> str | None:
    """The tier a failing or rejected task on ``tier`` climbs to, or None.

    None when the policy does not escalate, at the top of the ladder, or when ``tier`` is not
    on it. The ladder is the calibration's when it has one (a cascade's), else the profile's.

    Example:
        >>> from tierflow.config import load_config
        >>> from tierflow.calibration import SubagentCalibration
        >>> cfg = load_config("openai", require_keys=False)
        >>> climb("nano", POLICIES["tiered"], cfg), climb("flagship", POLICIES["tiered"], cfg)
        ('mini', None)
        >>> climb("nano", POLICIES["all-nano"], cfg) is None  # the policy does not escalate
        True
        >>> cal = SubagentCalibration(start_tier="nano", ladder=["nano", "flagship"])
        >>> climb("nano", POLICIES["cascade"], cfg, cal)
        'flagship'
    """
    return _neighbour(tier, _ladder(config, calibration), +1) if policy.escalate else None


def step_down(
    tier: str, config: TierConfig, calibration: SubagentCalibration | None = None
) -> str | None:
    """The tier a budget stop steps down to, or None at the bottom (or off the ladder).

    Example:
        >>> from tierflow.config import load_config
        >>> cfg = load_config("openai", require_keys=False)
        >>> step_down("flagship", cfg), step_down("nano", cfg)
        ('mini', None)
    """
    return _neighbour(tier, _ladder(config, calibration), -1)


def _neighbour(tier: str, ladder: Sequence[str], step: int) -> str | None:
    if tier not in ladder:
        return None
    at = list(ladder).index(tier) + step
    return ladder[at] if 0 <= at < len(ladder) else None


# The names before start_tier/climb, kept for importers.
def subagent_tier(policy: TierPolicy, declared: str, config: TierConfig) -> str:
    """The tier a subagent's task starts on (:func:`start_tier` at a subagent site)."""
    return start_tier(Site(SiteKind.SUBAGENT, declared), policy, config)


def planner_tier(policy: TierPolicy, config: TierConfig) -> str:
    """The tier of the supervisor and the final answer (:func:`start_tier` at a planner site)."""
    return start_tier(Site(SiteKind.PLANNER), policy, config)


def escalation_tier(policy: TierPolicy, tier: str, config: TierConfig) -> str | None:
    """The tier a failing task climbs to, or None (:func:`climb` on the profile's ladder)."""
    return climb(tier, policy, config)


def cheaper_tier(tier: str, config: TierConfig) -> str | None:
    """The tier a budget stop steps down to, or None (:func:`step_down`)."""
    return step_down(tier, config)


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
