"""One report per benchmark from one run: every tier policy, its cost/quality curve, the headline.

:func:`benchmark_report` runs the policies through the benchmark's graph on one split, with
the response cache on (each distinct request is paid once across policies), then writes
``report.md``, ``results.json`` and ``curve.png`` under ``.tierflow/reports/<suite>/``.

The curve has three parts: the measured policies (points), the calibrated router's threshold
swept over the same items (each item takes the measured cascade outcome when the router
starts it cheap, else the measured all-flagship outcome: what router+cascade does at that
threshold, computed from the runs), and random routing between the cheapest tier and the
flagship (the straight line between them). RouteLLM's published operating point is marked.
Costs are at the ``openai`` profile's prices, relative to all-flagship. The arithmetic lives in
``tierflow.evals._figures`` and the plot in ``tierflow.evals._curve_plot``; both are imported
from here:

Example:
    >>> from tierflow.evals.benchmark_report import random_mix, wilson
    >>> round(random_mix(10.0, 110.0, 60.0), 2), [round(v, 2) for v in wilson(9, 10)]
    (0.5, [0.6, 0.98])
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from tierflow.evals._bench_suites import BENCH_POLICIES, ROUTELLM, TARGET_COST, VARIANTS
from tierflow.evals._curve_plot import curve_plot
from tierflow.evals._figures import random_mix, threshold_sweep, wilson
from tierflow.evals._results import SuiteResult, percentile
from tierflow.evals._runner import arun
from tierflow.evals._suites import SUITES, load_items
from tierflow.evals._sync import run_sync
from tierflow.evals.headroom import (
    Captured,
    Headroom,
    captured_json,
    captured_share,
    headroom,
    headroom_json,
)
from tierflow.tiers import POLICIES, Start, TierPolicy

__all__ = [
    "BenchReport", "benchmark_report", "abenchmark_report", "wilson", "HEADLINE_COSTS",
    "BENCH_POLICIES", "random_mix", "curve_plot", "threshold_sweep",
]  # fmt: skip

HEADLINE_COSTS = (0.50, 0.25, 0.15)  # quality retained at these shares of all-flagship's cost


@dataclass
class Row:
    """One policy's figures (quality in [0, 1]; costs in USD at openai prices)."""

    policy: str
    n: int
    quality: float
    low: float
    high: float
    cost_usd: float
    verifier_usd: float
    p50_s: float
    p95_s: float
    escalation_rate: float | None
    errors: int
    rel_cost: float | None = None  # vs all-flagship; None when all-flagship did not run
    rel_quality: float | None = None
    base: str | None = None  # a variant row's policy, run through the suite's own graph


@dataclass
class BenchReport:
    """What :func:`benchmark_report` measured and wrote."""

    suite: str
    split: str
    profile: str
    results: list[SuiteResult]
    rows: list[Row]
    curve: list[tuple[float, float, float]]  # (threshold, rel cost, rel quality)
    calibration: str | None
    out_dir: Path
    variants: list[Row] = field(default_factory=list)  # the same items through another graph
    variant_results: list[SuiteResult] = field(default_factory=list)
    headroom: Headroom | None = None  # what it would take (tierflow.evals.headroom)
    curve_label: str = "router+cascade, threshold swept"  # what the curve sweeps
    captured: Captured | None = None  # the headline number (tierflow.evals.headroom)
    lead: list[str] = field(default_factory=list)  # lines right after the headline
    markdown_path: Path = field(init=False)
    plot_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.markdown_path = self.out_dir / "report.md"
        self.plot_path = self.out_dir / "curve.png"

    def row(self, policy: str) -> Row | None:
        """The row of ``policy``, if it ran."""
        return next((r for r in self.rows if r.policy == policy), None)

    def retained_at(self, share: float) -> tuple[float, str] | None:
        """Best quality retained (vs all-flagship) at <= ``share`` of its cost, and by what."""
        options = [(r.rel_quality, r.policy) for r in self.rows
                   if r.rel_quality is not None and r.rel_cost is not None
                   and r.rel_cost <= share + 1e-9]  # fmt: skip
        options += [(q, f"router@{t:.2f}") for t, c, q in self.curve if c <= share + 1e-9]
        return max(options) if options else None

    def cost_for(self, share: float = 0.95) -> tuple[float, str] | None:
        """Lowest cost (vs all-flagship) that keeps ``share`` of its quality, and by what.

        RouteLLM's figure of merit ("CPT(95%)") on the same axes.
        """
        options = [(r.rel_cost, r.policy) for r in self.rows
                   if r.rel_cost is not None and r.rel_quality is not None
                   and r.rel_quality >= share - 1e-9]  # fmt: skip
        options += [(c, f"router@{t:.2f}") for t, c, q in self.curve if q >= share - 1e-9]
        cheaper = [o for o in options if o[0] < 1.0 - 1e-9]  # all-flagship itself is 100%
        return min(cheaper) if cheaper else None

    def headline(self) -> str:
        """Quality retained vs all-flagship at 50%, 25% and 15% of its cost."""
        n = self.rows[0].n if self.rows else 0
        where = f"{self.suite} ({self.split}, {n} items, {self.profile}): "
        if self.row("all-flagship") is None:
            return where + (
                "all-flagship did not run, so no figure here is relative to it "
                "(add --policy all-flagship); quality and cost are in the table"
            )
        parts = []
        for share in HEADLINE_COSTS:
            best = self.retained_at(share)
            parts.append(
                f"{share:.0%} of the cost: "
                + (f"{best[0]:.1%} of the quality ({best[1]})" if best else "no policy that cheap")
            )
        cpt = self.cost_for(0.95)
        parts.append(
            f"95% of the quality first at {cpt[0]:.0%} of the cost ({cpt[1]})"
            if cpt else "no cheaper policy keeps 95% of the quality"
        )  # fmt: skip
        if self.suite in ROUTELLM:
            parts[-1] += f" (RouteLLM: {ROUTELLM[self.suite]:.0%})"
        if self.captured is not None:
            parts.insert(0, self.captured.text())
        return where + "; ".join(parts)

    def captured_usd(self, quality: float = 0.95) -> Captured | None:
        """The headline number on USD, from the policies that ran (None: no perfect router).

        The swept curve is left out: its thresholds are picked on these same items.
        """
        if self.headroom is None or self.row("all-flagship") is None:
            return None
        points = [(r.policy, r.rel_cost, r.rel_quality) for r in self.rows
                  if r.policy != "all-flagship" and r.rel_cost is not None
                  and r.rel_quality is not None]  # fmt: skip
        return captured_share(points, self.headroom.oracle[0], quality=quality)

    def table(self) -> Table:
        """The policy table (rich)."""
        table = Table(title=f"{self.suite}: tier policies on {self.split} (openai prices)")
        heads = ("policy", "n", "quality", "95% CI", "vs flagship", "cost USD", "vs flagship",
                 "verifier USD", "p50 s", "p95 s", "escalated", "errors")  # fmt: skip
        for h in heads:
            table.add_column(h, justify="left" if h == "policy" else "right")
        for r in self.rows:
            table.add_row(*_cells(r))
        if self.variants and self.rows:
            table.rows[-1].end_section = True  # the variants below a line: not in the headline
        for r in self.variants:
            table.add_row(*_cells(r), style="italic")
        return table

    def to_markdown(self) -> str:
        """The report as markdown (what ``report.md`` holds)."""
        lines = [
            f"# {self.suite}: tier policies ({self.split} split, {self.rows[0].n} items)",
            "",
            f"Profile `{self.profile}`; cost at `openai` prices; calibration: "
            f"`{self.calibration or 'none'}`. Latency: sum of model request latencies per item "
            "as first measured (a response-cache hit keeps its original latency).",
            "",
            f"**Headline.** {self.headline()}",
            "",
            *([*self.lead, ""] if self.lead else []),
            *_HEAD,
        ]
        lines += ["| " + " | ".join(_cells(r)) + " |" for r in self.rows]
        if self.variants:
            lines += ["", "The same items through another graph (not in the headline; its rows are "
                      "relative to its own all-flagship where that ran):", "", *_HEAD]  # fmt: skip
            lines += ["| " + " | ".join(_cells(r)) + " |" for r in self.variants]
            lines += ["", *self.variant_lines()]
        if self.curve:
            swept = self.curve_label.split(",")[0]  # router+cascade, or the router alone
            lines += ["", f"Router threshold sweep ({swept}, from the measured runs):", "",
                      "| threshold | cost vs flagship | quality vs flagship |", "|---|---|---|"]  # fmt: skip
            lines += [f"| {t:.3f} | {c:.1%} | {q:.1%} |" for t, c, q in _thin(self.curve)]
        if self.headroom is not None:
            lines += ["", *self.headroom.lines()]
        if self.suite in ROUTELLM:
            lines += ["", f"RouteLLM (published): 95% of the strong model's quality at "
                      f"{ROUTELLM[self.suite]:.0%} of its cost on {self.suite}."]  # fmt: skip
        return "\n".join(lines) + "\n"

    def variant_lines(self) -> list[str]:
        """One line per variant row: its quality and cost beside the policy it varies."""
        out = []
        for v in self.variants:
            base = self.row(v.base) if v.base else None
            if base is None:
                continue
            out.append(
                f"- {v.policy}: {v.quality:.3f} [{v.low:.3f}-{v.high:.3f}] at ${v.cost_usd:.6f} "
                f"vs {base.policy}: {base.quality:.3f} [{base.low:.3f}-{base.high:.3f}] at "
                f"${base.cost_usd:.6f} ({v.quality - base.quality:+.3f})"
            )
        return out


_HEAD = (
    "| policy | n | quality | 95% CI | vs flagship | cost USD | vs flagship | verifier USD "
    "| p50 s | p95 s | escalated | errors |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
)


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _cells(r: Row) -> list[str]:
    esc = "-" if r.escalation_rate is None else f"{r.escalation_rate:.0%}"
    return [r.policy, str(r.n), f"{r.quality:.3f}", f"{r.low:.3f}-{r.high:.3f}",
            _share(r.rel_quality), f"{r.cost_usd:.6f}", _share(r.rel_cost),
            f"{r.verifier_usd:.6f}", f"{r.p50_s:.2f}", f"{r.p95_s:.2f}", esc, str(r.errors)]  # fmt: skip


def _thin(
    curve: list[tuple[float, float, float]], keep: int = 12
) -> list[tuple[float, float, float]]:
    step = max(1, len(curve) // keep)
    return curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])


def _row(result: SuiteResult) -> Row:
    k = sum(e.quality for e in result.examples)
    low, high = wilson(k, result.n)
    lat = [e.model_latency_s for e in result.examples]
    verifier = sum(r["cost_usd"] for e in result.examples for r in e.usage if r["node"] == "verify")
    return Row(result.policy, result.n, result.quality, low, high, result.cost_usd,
               round(verifier, 10), percentile(lat, 50), percentile(lat, 95),
               result.escalation_rate, result.errors)  # fmt: skip


def _relative(rows: Sequence[Row], top: Row | None = None) -> Row | None:
    """Set rows' cost and quality relative to an all-flagship row; return that row.

    The rows' own all-flagship (a variant graph's, when it ran), else ``top``.
    """
    top = next((r for r in rows if (r.base or r.policy) == "all-flagship"), top)
    for r in rows:
        r.rel_cost = r.cost_usd / top.cost_usd if top and top.cost_usd else None
        r.rel_quality = r.quality / top.quality if top and top.quality else None
    return top


def _curve(suite: str, results: dict[str, SuiteResult], items: list[dict[str, Any]],
           router: Any) -> list[tuple[float, float, float]]:  # fmt: skip
    """Router threshold sweep over the measured cascade and all-flagship outcomes."""
    from tierflow.graphs.benchmarks.specs import CASCADES

    cascade, top = results.get("cascade"), results.get("all-flagship")
    if router is None or cascade is None or top is None or not top.cost_usd or not top.quality:
        return []
    spec, make = CASCADES[suite], SUITES[suite].make_input
    cheap, strong = {e.id: e for e in cascade.examples}, {e.id: e for e in top.examples}
    ids = [str(i["id"]) for i in items]
    sweep = threshold_sweep(
        [router.p_cheap(spec.route_text(make(i)["task"])) for i in items],
        [(cheap[i].quality, cheap[i].cost_usd) for i in ids],
        [(strong[i].quality, strong[i].cost_usd) for i in ids],
    )
    return [(t, c / top.cost_usd, q / top.quality) for t, c, q in sweep]


async def abenchmark_report(
    suite: str,
    policies: Sequence[str],
    *,
    limit: int | None = None,
    profile: str | None = None,
    split: str | None = None,
    response_cache: str | None = None,
    calibration: str | None = None,
    models: Any = None,
    retry: Any = None,
    progress: Callable[[Any], None] | None = None,
    out_dir: Path | None = None,
) -> BenchReport:
    """Async :func:`benchmark_report`."""
    from tierflow.graphs.benchmarks.specs import CASCADES
    from tierflow.nodes.cascade import calibration_of
    from tierflow.runtime import RunContext

    kwargs = dict(limit=limit, profile=profile, split=split, response_cache=response_cache,
                  calibration=calibration, models=models, retry=retry, progress=progress)  # fmt: skip
    ordered = [p for p in policies if p != "random"] + [p for p in policies if p == "random"]
    done: dict[str, SuiteResult] = {}
    for name in ordered:
        policy: str | TierPolicy = name
        if name == "random":
            policy = _random_policy(done, profile, models)
        done[name] = await arun(suite, policy, **kwargs)
    results = [done[p] for p in policies if p in done]
    rows = [_row(r) for r in results]
    top = _relative(rows)
    variant_results: list[SuiteResult] = []
    variants: list[Row] = []
    for variant in VARIANTS.get(suite, ()):
        these = []
        for name in (p for p in variant.policies if p in done):
            ran = await arun(variant.suite, name, **(kwargs | {"calibration": None}))
            variant_results.append(ran)
            label = f"{name} ({variant.label})"
            these.append(dataclasses.replace(_row(ran), policy=label, base=name))
        _relative(these, top)
        variants += these
    cal, sub = calibration_of(CASCADES[suite], RunContext(calibration=calibration))
    items = load_items(suite, limit, split)
    curve = _curve(suite, done, items, sub.router if sub else None)
    ran = results[0].profile if results else (profile or "")
    report = BenchReport(suite, split or "report", ran, results, rows, curve,
                         cal.label() if cal else None,
                         out_dir or Path(".tierflow") / "reports" / suite,
                         variants, variant_results)  # fmt: skip
    if "all-nano" in done and "all-flagship" in done:
        report.headroom = headroom(done["all-nano"], done["all-flagship"], done.get("cascade"),
                                   router=done.get("router"),
                                   cost=TARGET_COST.get(suite, 0.5))  # fmt: skip
        report.captured = report.captured_usd()
    _write(report)
    return report


def _random_policy(done: dict[str, SuiteResult], profile: str | None, models: Any) -> TierPolicy:
    """Random routing between the cheapest tier and the flagship, at the tiered policies' cost."""
    base = POLICIES["random"]
    cheap, top = done.get("all-nano"), done.get("all-flagship")
    target = next((done[p] for p in ("router+cascade", "cascade", "router") if p in done), None)
    if cheap is None or top is None or target is None:
        return base  # half and half
    share = random_mix(cheap.cost_usd, top.cost_usd, target.cost_usd)
    return dataclasses.replace(base, start=Start.RANDOM.value,
                               mix=(("@cheapest", 1 - share), ("@flagship", share)))  # fmt: skip


def _write(report: BenchReport) -> None:
    report.out_dir.mkdir(parents=True, exist_ok=True)
    report.markdown_path.write_text(report.to_markdown())
    per_item = {  # keyed by row: a variant's rows name the graph they went through
        row.policy: [dataclasses.asdict(e) | {"usage": None} for e in result.examples]
        for row, result in zip(
            [*report.rows, *report.variants],
            [*report.results, *report.variant_results],
            strict=True,
        )
    }
    (report.out_dir / "results.json").write_text(json.dumps(
        {"suite": report.suite, "split": report.split, "profile": report.profile,
         "calibration": report.calibration, "rows": [dataclasses.asdict(r) for r in report.rows],
         "variants": [dataclasses.asdict(r) for r in report.variants],
         "headroom": headroom_json(report.headroom),
         "captured": captured_json(report.captured),
         "curve": report.curve, "items": per_item}, indent=1, default=str))  # fmt: skip
    curve_plot(report, report.plot_path)


def benchmark_report(suite: str, policies: Sequence[str], **kwargs: Any) -> BenchReport:
    """Run ``policies`` on a benchmark and write its report (see the module docstring).

    Args:
        suite: ``gsm8k``, ``mmlu``, ``mbpp`` or ``bfcl``.
        policies: policy names (``random`` runs last, at the tiered policies' cost).
        **kwargs: ``limit``, ``profile``, ``split``, ``response_cache``, ``calibration``,
            ``models`` (scripted doubles), ``retry``, ``progress``, ``out_dir``.
    """
    return run_sync(abenchmark_report(suite, policies, **kwargs))
