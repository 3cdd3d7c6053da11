"""What it would take: how good the cheap tier and its check must be for a cascade to pay.

From the per-item outcomes one benchmark report measured on the same items (all-nano,
all-flagship and the cascade), this works out, with no further model call:

- a **perfect router** (it knows in advance where the flagship does better than the cheap
  tier, sends it exactly those items and the rest to the cheap tier, and pays no check): the
  best any router could do with these two models;
- the **cascade's verifier as measured**: the share of the cheap tier's right answers it
  accepted (TPR) and of its wrong ones (FPR);
- the **two-tier cascade** (cheap tier, its check at the measured cost, the flagship on a
  rejection) with a verifier of any TPR/FPR, in expectation over these items; for each TPR,
  the loosest FPR that keeps ``quality`` x all-flagship's quality at <= ``cost`` x its cost;
- how often the cheap tier must be right for even a **perfect verifier** (TPR 1, FPR 0) to
  stay under the cost cap, since every wrong cheap answer is paid again at the flagship;
- the same table for a **router** that picks the tier before any answer (no check, nothing
  paid twice), judged on the items where the flagship does better than the cheap tier (what
  RouteLLM's routers are trained to find): the loosest FPR, per TPR;
- the report's headline number (:func:`captured_share`): the share of the perfect router's
  saving that the cheapest policy keeping ``quality`` x all-flagship's quality captured,
  ``(1 - cost) / (1 - perfect router's cost)``, costs as shares of all-flagship's.

Example:
    >>> from tierflow.evals._results import ExampleResult, SuiteResult
    >>> def result(policy, rows):
    ...     ex = [ExampleResult(str(i), q, {}, {}, c, 0, 0, 0, 0.0, e, {"solve": t}, usage=u)
    ...           for i, (q, c, e, t, u) in enumerate(rows)]
    ...     return SuiteResult("x", policy, "openai", tuple(ex))
    >>> nano = result("all-nano", [(1.0, 1.0, 0, "nano", [])] * 3 + [(0.0, 1.0, 0, "nano", [])])
    >>> top = result("all-flagship", [(1.0, 10.0, 0, "flagship", [])] * 4)
    >>> verify = [{"node": "verify", "cost_usd": 0.5}]
    >>> cascade = result("cascade", [(1.0, 1.5, 0, "nano", verify)] * 3
    ...                  + [(1.0, 11.5, 1, "flagship", verify)])
    >>> h = headroom(nano, top, cascade, quality=0.95, cost=0.5)
    >>> h.measured, h.oracle, h.perfect_verifier
    ((1.0, 0.0), (0.325, 1.0), (0.4, 1.0))
    >>> h.max_fpr(1.0), round(h.needed_cheap_accuracy, 3)  # 1 wrong answer in 4 may pass 20%
    (0.2, 0.65)
    >>> h.routed(1.0, 0.0), h.max_fpr(1.0, router=True)  # the one gain item: the flagship
    ((0.325, 1.0), 0.255)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tierflow.evals._results import ExampleResult, SuiteResult

__all__ = [
    "Headroom", "headroom", "TPRS", "Captured", "captured_share", "captured_json", "headroom_json",
]  # fmt: skip

TPRS = (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)  # the verifier sensitivities the report tabulates
_FPR_STEPS = 200


@dataclass(frozen=True)
class _Item:
    cheap_right: float
    top_right: float
    cheap_usd: float
    top_usd: float
    check_usd: float


@dataclass(frozen=True)
class Headroom:
    """The figures of the module docstring (costs and qualities relative to all-flagship)."""

    quality: float  # the target share of all-flagship's quality
    cost: float  # the cost cap, as a share of all-flagship's cost
    cheap_accuracy: float  # share of items the cheap tier answered right
    oracle: tuple[float, float]  # (cost, quality) of a perfect router
    measured: tuple[float, float] | None  # (TPR, FPR) of the cascade's verifier
    needed_cheap_accuracy: float  # cheap-tier accuracy a perfect verifier needs under the cap
    items: tuple[_Item, ...]  # costs relative to all-flagship's total
    router_measured: tuple[float, float] | None = None  # (TPR, FPR) of the router policy run

    @property
    def perfect_verifier(self) -> tuple[float, float]:
        """(cost, quality) of the cascade with a verifier of TPR 1 and FPR 0."""
        return self.outcome(1.0, 0.0)

    @property
    def measured_outcome(self) -> tuple[float, float] | None:
        """(cost, quality) expected at the measured verifier's rates."""
        return self.outcome(*self.measured) if self.measured else None

    def outcome(self, tpr: float, fpr: float) -> tuple[float, float]:
        """(cost, quality) of the two-tier cascade with a verifier of this TPR and FPR."""
        cost = quality = 0.0
        for i in self.items:
            escalate = i.cheap_right * (1 - tpr) + (1 - i.cheap_right) * (1 - fpr)
            cost += i.cheap_usd + i.check_usd + escalate * i.top_usd
            quality += i.cheap_right * tpr + escalate * i.top_right
        return round(cost, 9), round(quality / len(self.items) / _top_quality(self.items), 9)

    def routed(self, tpr: float, fpr: float) -> tuple[float, float]:
        """(cost, quality) of a router with this TPR and FPR, and no check.

        It sends to the flagship ``tpr`` of the items where the flagship does better than the
        cheap tier and ``fpr`` of the others; the rest go to the cheap tier.
        """
        cost = quality = 0.0
        for i in self.items:
            up = tpr if i.top_right > i.cheap_right else fpr
            cost += up * i.top_usd + (1 - up) * i.cheap_usd
            quality += up * i.top_right + (1 - up) * i.cheap_right
        return round(cost, 9), round(quality / len(self.items) / _top_quality(self.items), 9)

    def max_fpr(self, tpr: float, router: bool = False) -> float | None:
        """The largest FPR that meets both targets at ``tpr`` (None: none does).

        Of the cascade's verifier, or of a router (``router=True``).
        """
        figures = self.routed if router else self.outcome
        ok = [f / _FPR_STEPS for f in range(_FPR_STEPS + 1)
              if self._meets(*figures(tpr, f / _FPR_STEPS))]  # fmt: skip
        return max(ok) if ok else None

    def _meets(self, cost: float, quality: float) -> bool:
        return quality >= self.quality - 1e-9 and cost <= self.cost + 1e-9

    def lines(self) -> list[str]:
        """The report's "what it would take" section, as markdown lines."""
        q, c = f"{self.quality:.0%}", f"{self.cost:.0%}"
        perfect = self.perfect_verifier
        out = [
            f"What it would take to keep {q} of all-flagship's quality at <= {c} of its cost, "
            f"from the per-item outcomes above ({len(self.items)} items; a two-tier cascade, "
            "cheap tier then flagship, its check at the measured cost):",
            "",
            f"- the cheap tier is right on {self.cheap_accuracy:.1%} of items;",
            f"- a perfect router (sends the flagship exactly the items it does better on, no "
            "check): "
            f"{self.oracle[1]:.1%} of the quality at {self.oracle[0]:.1%} of the cost;",
            f"- a perfect verifier (accepts every right cheap answer, no wrong one): "
            f"{perfect[1]:.1%} at {perfect[0]:.1%}; under {c} it needs a cheap tier right on "
            f">= {self.needed_cheap_accuracy:.1%} of items;",
        ]
        if self.measured and self.measured_outcome:
            (tpr, fpr), (cost, quality) = self.measured, self.measured_outcome
            out.append(
                f"- the cascade's verifier as measured: accepts {tpr:.1%} of the cheap tier's "
                f"right answers and {fpr:.1%} of its wrong ones (expected {quality:.1%} at "
                f"{cost:.1%})."
            )
        if self.router_measured:
            tpr, fpr = self.router_measured
            cost, quality = self.routed(tpr, fpr)
            out.append(
                f"- the router as measured: sends the flagship {tpr:.1%} of the items where it "
                f"does better and {fpr:.1%} of the others (expected {quality:.1%} at "
                f"{cost:.1%})."
            )
        out += [
            "",
            "Verifier: TPR = share of the cheap tier's right answers it keeps, FPR = share of its "
            "wrong ones it keeps. Router: TPR = share of the items where the flagship does "
            "better that it sends to the flagship, FPR = share of the other items it sends "
            "there. The loosest FPR that meets both targets:",
            "",
            "| TPR | verifier (cascade) | router (no check) |",
            "|---|---|---|",
        ]
        for sensitivity in TPRS:
            cells = [self.max_fpr(sensitivity, router) for router in (False, True)]
            shown = ["none" if c is None else f"{c:.1%}" for c in cells]
            out.append(f"| {sensitivity:.0%} | {shown[0]} | {shown[1]} |")
        return out


@dataclass(frozen=True)
class Captured:
    """How much of the perfect router's saving a policy kept, at >= ``quality`` of the flagship's.

    Costs are shares of all-flagship's cost (``measure`` says what is counted). ``policy`` is
    the cheapest policy that kept ``quality`` (None: no policy cheaper than all-flagship did).
    The share can pass 100%: the perfect router keeps all of both tiers' right answers, so a
    policy that gives up quality down to the target may spend less than it.
    """

    quality: float
    perfect_cost: float
    measure: str = "USD"
    policy: str | None = None
    cost: float | None = None
    kept: float | None = None  # the policy's quality vs all-flagship

    @property
    def share(self) -> float | None:
        """``(1 - cost) / (1 - perfect_cost)``; None when no policy kept the quality."""
        if self.cost is None or self.perfect_cost >= 1.0:
            return None
        return (1.0 - self.cost) / (1.0 - self.perfect_cost)

    def text(self) -> str:
        """The headline sentence (the figure, or that no policy kept the quality)."""
        at = f">= {self.quality:.0%} of all-flagship's quality"
        if self.share is None or self.kept is None or self.cost is None:
            return f"captured share of the perfect router's saving: none at {at}"
        return (
            f"captured share of the perfect router's saving at {at}: {self.share:.1%} "
            f"({self.policy}: {self.kept:.1%} of the quality at {self.cost:.1%} of the cost; "
            f"perfect router {self.perfect_cost:.1%}; cost: {self.measure})"
        )


def captured_share(
    points: Iterable[tuple[str, float, float]],
    perfect_cost: float,
    *,
    quality: float = 0.95,
    measure: str = "USD",
) -> Captured:
    """The :class:`Captured` of the cheapest ``(policy, cost, quality)`` keeping ``quality``.

    ``points``: each policy's cost and quality as shares of all-flagship's (all-flagship
    itself, at cost 1, captures nothing and is never the answer).

    Example:
        >>> c = captured_share([("router", 0.6, 0.96), ("cascade", 0.3, 0.91)], 0.2)
        >>> c.policy, round(c.share, 3)
        ('router', 0.5)
        >>> captured_share([("cascade", 0.3, 0.91)], 0.2).text()
        "captured share of the perfect router's saving: none at >= 95% of all-flagship's quality"
    """
    kept = [(cost, -q, name) for name, cost, q in points
            if q >= quality - 1e-9 and cost < 1.0 - 1e-9]  # fmt: skip
    if not kept:
        return Captured(quality, perfect_cost, measure)
    cost, minus_q, name = min(kept)
    return Captured(quality, perfect_cost, measure, name, cost, -minus_q)


def headroom(
    cheap: SuiteResult,
    top: SuiteResult,
    cascade: SuiteResult | None,
    *,
    router: SuiteResult | None = None,
    quality: float = 0.95,
    cost: float = 0.5,
) -> Headroom | None:
    """The :class:`Headroom` of a report's runs (None when all-flagship scored or cost 0).

    ``router`` (the router policy's run on the same items) adds its measured TPR and FPR.
    """
    strong = {e.id: e for e in top.examples}
    checked = {e.id: e for e in cascade.examples} if cascade else {}
    shared = [e for e in cheap.examples if e.id in strong]
    total = sum(strong[e.id].cost_usd for e in shared)
    items = tuple(
        _Item(e.quality, strong[e.id].quality, e.cost_usd / total,
              strong[e.id].cost_usd / total, _check_usd(checked.get(e.id)) / total)
        for e in shared
    ) if total else ()  # fmt: skip
    if not items or not _top_quality(items):
        return None
    top_q = _top_quality(items)
    oracle_q = sum(max(i.cheap_right, i.top_right) for i in items) / len(items) / top_q
    oracle_c = sum(i.cheap_usd if i.cheap_right >= i.top_right else i.top_usd for i in items)
    fixed = sum(i.cheap_usd + i.check_usd for i in items)  # paid on every item
    # A perfect verifier escalates exactly the wrong answers: fixed + (1 - a) x all-flagship.
    needed = min(1.0, max(0.0, 1 - (cost - fixed)))
    right = sum(i.cheap_right for i in items) / len(items)
    return Headroom(quality, cost, right, (round(oracle_c, 9), round(oracle_q, 9)),
                    _measured(cheap, checked) if cascade else None, needed, items,
                    _routed(cheap, top, router) if router else None)  # fmt: skip


def _routed(
    cheap: SuiteResult, top: SuiteResult, router: SuiteResult
) -> tuple[float, float] | None:
    """(TPR, FPR) of a router run: sent to the flagship, by whether the flagship does better."""
    strong, cheap_of = {e.id: e for e in top.examples}, {e.id: e for e in cheap.examples}
    sent = {True: [0, 0], False: [0, 0]}  # flagship better? -> [sent up, all]
    for e in router.examples:
        low, high = cheap_of.get(e.id), strong.get(e.id)
        if low is None or high is None:
            continue
        tally = sent[high.quality > low.quality]
        tally[0] += int(e.subagent_tiers == high.subagent_tiers)
        tally[1] += 1
    if not sent[True][1] or not sent[False][1]:
        return None
    return sent[True][0] / sent[True][1], sent[False][0] / sent[False][1]


def _top_quality(items: tuple[_Item, ...]) -> float:
    return sum(i.top_right for i in items) / len(items) if items else 0.0


def _check_usd(example: ExampleResult | None) -> float:
    if example is None:
        return 0.0
    return sum(float(r.get("cost_usd") or 0) for r in example.usage if r.get("node") == "verify")


def _measured(cheap: SuiteResult, checked: dict[str, ExampleResult]) -> tuple[float, float] | None:
    """(TPR, FPR) of the cascade's check: kept the cheap tier's answer, by its correctness."""
    kept = {True: [0, 0], False: [0, 0]}  # right? -> [accepted, all]
    for e in cheap.examples:
        c = checked.get(e.id)
        if c is None:
            continue
        tally = kept[e.quality >= 1.0]
        tally[0] += int(c.escalations == 0 and c.subagent_tiers == e.subagent_tiers)
        tally[1] += 1
    if not kept[True][1] or not kept[False][1]:
        return None
    return kept[True][0] / kept[True][1], kept[False][0] / kept[False][1]


def captured_json(c: Captured | None) -> dict[str, Any] | None:
    """The captured share as JSON (the ``captured`` of a report's results.json)."""
    return None if c is None else dataclasses.asdict(c) | {"share": c.share}


def headroom_json(h: Headroom | None) -> dict[str, Any] | None:
    """What it would take, as JSON (the ``headroom`` of a report's results.json)."""
    if h is None:
        return None
    return {"quality": h.quality, "cost": h.cost, "cheap_accuracy": h.cheap_accuracy,
            "perfect_router": h.oracle, "perfect_verifier": h.perfect_verifier,
            "measured_tpr_fpr": h.measured, "measured_outcome": h.measured_outcome,
            "router_tpr_fpr": h.router_measured,
            "needed_cheap_accuracy": h.needed_cheap_accuracy,
            "max_fpr_by_tpr": {str(t): h.max_fpr(t) for t in TPRS},
            "router_max_fpr_by_tpr": {str(t): h.max_fpr(t, router=True) for t in TPRS}}  # fmt: skip
