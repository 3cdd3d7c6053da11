"""The cost/quality PNG of a benchmark report (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierflow.evals._bench_suites import ROUTELLM

if TYPE_CHECKING:
    from tierflow.evals.benchmark_report import BenchReport

__all__ = ["curve_plot"]


def curve_plot(report: BenchReport, path: Path) -> Path:
    """The cost/quality PNG: policies, the router sweep, random routing, RouteLLM's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    if report.curve:
        ax.plot([c for _, c, _ in report.curve], [q for _, _, q in report.curve], "-",
                color="tab:blue", alpha=0.6, label=report.curve_label)  # fmt: skip
    rows = [*report.rows, *report.variants]
    # Without all-flagship (or with one that cost or scored nothing): absolute cost and quality.
    relative = all(r.rel_cost is not None and r.rel_quality is not None for r in rows)
    cheap = report.row("all-nano")
    if relative and cheap and report.row("all-flagship"):
        ax.plot([cheap.rel_cost or 0.0, 1.0], [cheap.rel_quality or 0.0, 1.0], "--",
                color="grey", label="random routing (nano/flagship)")  # fmt: skip
    for r in rows:
        x, y = (r.rel_cost or 0.0, r.rel_quality or 0.0) if relative else (r.cost_usd, r.quality)
        ax.scatter([x], [y], s=40, zorder=3, marker="o" if r.base is None else "s")
        ax.annotate(r.policy, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if not relative:
        return _save(fig, ax, path, report, "cost USD (openai prices)", "quality")
    if report.headroom is not None:  # what these two models would allow
        for (cost, quality), label, mark in (
            (report.headroom.oracle, "perfect router", "P"),
            (report.headroom.perfect_verifier, "cascade, perfect verifier", "X"),
        ):
            ax.scatter([cost], [quality], marker=mark, s=80, color="tab:green", zorder=4,
                       label=label)  # fmt: skip
        ax.axvline(report.headroom.cost, color="tab:green", lw=0.5, ls=":")
    if report.suite in ROUTELLM:
        ax.scatter([ROUTELLM[report.suite]], [0.95], marker="*", s=160, color="red", zorder=4,
                   label=f"RouteLLM published ({report.suite})")  # fmt: skip
    ax.axhline(0.95, color="red", lw=0.5, ls=":")
    return _save(fig, ax, path, report, "cost vs all-flagship (openai prices)",
                 "quality vs all-flagship")  # fmt: skip


def _save(fig: Any, ax: Any, path: Path, report: BenchReport, xlabel: str, ylabel: str) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{report.suite}: {report.rows[0].n if report.rows else 0} items ({report.split})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
