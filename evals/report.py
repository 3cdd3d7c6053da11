"""Show suite results: a rich table, a cost-vs-quality frontier plot, and a tier recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from tierflow.evals._results import SuiteResult

__all__ = ["render_table", "pareto_frontier", "frontier_plot", "Recommendation", "recommend"]

LADDER = ("nano", "mini", "flagship")


def render_table(results: Sequence[SuiteResult]) -> Table:
    """One row per policy: examples, quality, cost (openai prices), latency, escalation rate."""
    suites = sorted({r.suite for r in results})
    scripted = " - SCRIPTED test models, not real ones" if any(r.scripted for r in results) else ""
    table = Table(title=f"evals: {', '.join(suites)} (cost at openai prices){scripted}")
    for name in ("suite", "policy", "examples", "quality", "cost USD", "USD/example",
                 "p50 s", "p95 s", "escalation rate", "errors"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("suite", "policy") else "right")
    for r in results:
        table.add_row(
            r.suite, r.policy, str(r.n), f"{r.quality:.3f}", f"{r.cost_usd:.6f}",
            f"{r.cost_per_example_usd:.6f}", f"{r.p50_latency_s:.2f}", f"{r.p95_latency_s:.2f}",
            "-" if r.escalation_rate is None else f"{r.escalation_rate:.2f}", str(r.errors),
        )  # fmt: skip
    return table


def pareto_frontier(results: Sequence[SuiteResult]) -> list[SuiteResult]:
    """Results no other result beats on both cost (lower) and quality (higher), cheapest first."""
    front = [
        r for r in results
        if not any(
            o.cost_usd <= r.cost_usd and o.quality >= r.quality
            and (o.cost_usd < r.cost_usd or o.quality > r.quality)
            for o in results
        )
    ]  # fmt: skip
    return sorted(front, key=lambda r: (r.cost_usd, -r.quality))


def frontier_plot(results: Sequence[SuiteResult], path: str | Path) -> Path:
    """Write a cost-vs-quality PNG: one labelled point per policy, the Pareto frontier as a line.

    Raises:
        ImportError: matplotlib is missing (``pip install 'tierflow[evals]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("frontier_plot needs matplotlib: pip install 'tierflow[evals]'") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    try:
        for i, r in enumerate(results):
            ax.scatter(r.cost_per_example_usd, r.quality, s=40, zorder=3)
            label = r.policy if len({x.suite for x in results}) == 1 else f"{r.suite}/{r.policy}"
            # Alternate label heights so policies at nearly the same point stay readable.
            ax.annotate(label, (r.cost_per_example_usd, r.quality), textcoords="offset points",
                        xytext=(5, 5 if i % 2 == 0 else -12), fontsize=9)  # fmt: skip
        # The frontier as a staircase from each non-dominated policy to the next (quality
        # that money buys), carried to the costliest point so even one policy draws a line.
        front = pareto_frontier(results)
        xs = [r.cost_per_example_usd for r in front]
        ys = [r.quality for r in front]
        right = max(r.cost_per_example_usd for r in results)
        ax.plot([*xs, right], [*ys, ys[-1]], "--", drawstyle="steps-post", color="grey",
                label="Pareto frontier", zorder=2)  # fmt: skip
        ax.set_xlabel("cost per example, USD (openai prices)")
        ax.set_ylabel("quality")
        ax.set_ylim(-0.05, 1.05)
        scripted = " (scripted test models)" if any(r.scripted for r in results) else ""
        ax.set_title(f"cost vs quality: {', '.join(sorted({r.suite for r in results}))}{scripted}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


@dataclass(frozen=True)
class Recommendation:
    """The cheapest tier for one subagent whose quality is within tolerance of the best.

    ``tier`` is None when no tier reaches the quality floor. ``thin`` says the examples are
    too few for the choice to mean much (fewer than ``min_examples``).
    """

    subagent: str
    tier: str | None
    quality: float
    best_tier: str
    best_quality: float
    evidence: str
    thin: bool = False


def _rank(tier: str) -> int:
    return LADDER.index(tier) if tier in LADDER else len(LADDER)


def recommend(
    results: Sequence[SuiteResult],
    tolerance: float = 0.05,
    floor: float = 0.6,
    min_examples: int = 20,
) -> list[Recommendation]:
    """Per subagent, the cheapest good-enough serving tier (or none below the quality floor).

    Good enough: quality within ``tolerance`` of the best tier's and at least ``floor``.

    Each result says which tier served each subagent (majority of its tasks) and the subagent's
    quality there (its own metric where the suite has one, else the suite quality). When several
    policies ran a subagent on the same tier, the best quality of that tier counts.

    Example:
        >>> from tierflow.evals import compare
        >>> from tierflow.evals.scripted import models_for
        >>> rs = compare("routing", ["all-nano", "all-flagship"], limit=2, profile="openai",
        ...              models=models_for("routing"))
        >>> recommend(rs)[0].tier
        'nano'
    """
    by_sub: dict[str, dict[str, tuple[float, SuiteResult, dict[str, object]]]] = {}
    for r in results:
        for name, info in r.subagents().items():
            tiers = by_sub.setdefault(name, {})
            tier, quality = str(info["tier"]), float(info["quality"])  # type: ignore[arg-type]
            if tier not in tiers or quality > tiers[tier][0]:
                tiers[tier] = (quality, r, info)
    out = []
    for name, tiers in sorted(by_sub.items()):
        best_tier = max(tiers, key=lambda t: (tiers[t][0], -_rank(t)))
        best = tiers[best_tier][0]
        ok = [t for t in tiers if tiers[t][0] >= max(best - tolerance, floor) - 1e-12]
        pick = min(ok, key=_rank) if ok else None
        rows = []
        for t in sorted(tiers, key=_rank):
            q, r, info = tiers[t]
            proxy = "" if info["own_metric"] else " (suite quality)"
            rows.append(f"{t}: quality {q:.3f}{proxy} under {r.policy}, "
                        f"${float(info['cost_usd']):.6f} for {r.n} examples")  # type: ignore[arg-type]  # fmt: skip
        examples = min(tiers[t][1].n for t in tiers)
        thin = examples < min_examples
        if pick is None:
            head = (f"{name}: no tier reaches the quality floor {floor:.2f} (best {best:.3f} on "
                    f"{best_tier}); keep the declared tier and improve the subagent")  # fmt: skip
        else:
            head = (f"{name}: use {pick} (quality {tiers[pick][0]:.3f}; best {best:.3f} on "
                    f"{best_tier}; tolerance {tolerance:.3f}, floor {floor:.2f})")  # fmt: skip
        if thin:
            head += f"; only {examples} examples per tier: too few to decide, run more"
        if any(tiers[t][1].scripted for t in tiers):
            head += "; figures from scripted test models"
        quality = tiers[pick][0] if pick else best
        out.append(
            Recommendation(
                name, pick, quality, best_tier, best, f"{head}. " + "; ".join(rows), thin
            )
        )
    return out
