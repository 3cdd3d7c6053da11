"""The replay's own sections of a report: RouteLLM's cost measure, and what calibration chose."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tierflow.evals._bench_suites import ROUTELLM
from tierflow.evals._replay_policies import SCORED

if TYPE_CHECKING:
    from tierflow.evals.replay import Replay, ReplayOptions

__all__ = ["replay_lines", "lead_lines", "cheapest_at"]

# The policies whose thresholds (or check rule) calibration chose.
CALIBRATED = ("router", "cascade", "router+cascade", SCORED)


def cheapest_at(
    sweep: list[tuple[float, float, float]], share: float = 0.95
) -> tuple[float, float, float] | None:
    """The sweep point of fewest strong calls keeping ``share`` of the strong quality.

    Example:
        >>> cheapest_at([(0.0, 0.0, 0.8), (0.5, 0.4, 0.96), (1.0, 1.0, 1.0)])
        (0.5, 0.4, 0.96)
    """
    ok = [pt for pt in sweep if pt[2] >= share - 1e-9]
    return min(ok, key=lambda pt: (pt[1], -pt[2])) if ok else None


def _data_lines(r: Replay, o: ReplayOptions) -> list[str]:
    n = r.figures["rows"]
    name = r.bench.suite.removeprefix("routellm-")
    used = f"{n['embedded']} with a prompt embedding" if o.needs_embeddings else "all used"
    lines = [
        "## Replay of RouteLLM's records", "",
        f"What GPT-4 (`gpt-4-1106-preview`, as `{o.strong_tier}`) and Mixtral-8x7B-Instruct (as "
        f"`{o.weak_tier}`) did on each item, from RouteLLM's evaluation data "
        "(`shared/data/routellm/`): no model was called. "
        f"{n['file']} rows in the file, {used}, split by a hash of each row's key into "
        f"{n['calibration']} calibration and {n['report']} report rows; every figure above and "
        "in the next table is on the report part.",
    ]  # fmt: skip
    if name == "gsm8k":
        lines.append("GSM8K indexes 800-1318 are not in the file and were never read.")
    if not o.needs_embeddings:
        lines.append(
            f"No prompt embeddings were read (`bench/results/routellm-{name}-embeddings.npz` is "
            "not there): the router was chosen among feature sets of the prompt's structure "
            "and subject only."
        )
    elif n["embedded"] < n["file"]:
        lines.append(
            f"The {n['embedded']} rows are a subsample stratified by subject (proportional): "
            "those whose prompts were embedded before the embedding run's deadline, in an order "
            "in which every prefix takes the same share of each subject."
        )
    lines += [
        "", f"USD at `{o.profile}` prices ({o.strong_tier} for GPT-4, {o.weak_tier} for "
        "Mixtral): input tokens approximated from the prompt (4 characters a token), output "
        "tokens from each response's length (GSM8K) or 1 (MMLU's one-letter answer). Latency is "
        "not replayed. The check costs nothing (local arithmetic).", "",
    ]  # fmt: skip
    return lines


def _share_table(r: Replay) -> list[str]:
    top = r.results["all-flagship"]
    lines = [
        "### RouteLLM's cost measure: share of requests sent to the strong model", "",
        "| policy | share to strong | 95% CI | quality | vs strong | 95% CI | USD vs all-flagship |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, result in r.results.items():
        (q_lo, q_hi), (s_lo, s_hi) = r.figures["ci"][name]
        rel = result.cost_usd / top.cost_usd if top.cost_usd else 0.0
        vs = result.quality / top.quality if top.quality else 0.0
        lines.append(
            f"| {name} | {r.shares[name]:.1%} | {s_lo:.1%}-{s_hi:.1%} | "
            f"{result.quality:.3f} | {vs:.1%} | {q_lo:.1%}-{q_hi:.1%} | {rel:.1%} |"
        )
    return lines + ["", "Intervals: 1,000 bootstrap resamples of the report items."]


def lead_lines(r: Replay) -> list[str]:
    """The headline number with its intervals, on RouteLLM's cost measure (report part)."""
    c = r.bench.captured
    if c is None:
        return []
    (p_lo, p_hi) = r.figures["ci"]["perfect router"][1]
    perfect = f"the perfect router sends {c.perfect_cost:.1%} [{p_lo:.1%}-{p_hi:.1%}]"
    if c.policy is None or c.share is None:
        return [f"**Captured share of the perfect router's saving: none at >= {c.quality:.0%} of "
                f"GPT-4's quality** (no policy kept it on the report part; {perfect} of requests "
                "to GPT-4)."]  # fmt: skip
    (q_lo, q_hi), (s_lo, s_hi) = r.figures["ci"][c.policy]
    low, high = r.figures["captured_ci"]
    return [
        f"**Captured share of the perfect router's saving at >= {c.quality:.0%} of GPT-4's "
        f"quality: {c.share:.1%} [{low:.1%}-{high:.1%}]**, by {c.policy} (the cheapest policy "
        f"that kept it on the report part): {c.kept:.1%} [{q_lo:.1%}-{q_hi:.1%}] of GPT-4's "
        f"quality sending {c.cost:.1%} [{s_lo:.1%}-{s_hi:.1%}] of requests to GPT-4; {perfect}. "
        "Cost: share of requests sent to the strong model (RouteLLM's measure); intervals: "
        "1,000 bootstrap resamples of the report items."
    ]  # fmt: skip


def _predicted_table(r: Replay) -> list[str]:
    """Each calibrated policy: its figures predicted on calibration, then measured on report."""
    predicted = r.calibration.get("predicted", {})
    lines = ["", "**Predicted on calibration vs measured on report**, each policy at the threshold "
             "chosen on calibration (predicted: out-of-fold, except the check rule's own figures, "
             "which fit nothing):", "",
             "| policy | predicted quality vs strong | predicted share to strong | measured quality "
             "vs strong | 95% CI | measured share to strong | 95% CI |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    top = r.results["all-flagship"].quality
    for name in (n for n in CALIBRATED if n in predicted and n in r.results):
        pr, (q_ci, s_ci) = predicted[name], r.figures["ci"][name]
        measured = r.results[name].quality / top if top else 0.0
        lines.append(
            f"| {name} | {pr['quality_vs_strong']:.1%} | {pr['share_strong']:.1%} | "
            f"{measured:.1%} | {q_ci[0]:.1%}-{q_ci[1]:.1%} | {r.shares[name]:.1%} | "
            f"{s_ci[0]:.1%}-{s_ci[1]:.1%} |"
        )
    return lines


def _verdict(r: Replay) -> list[str]:
    suite = r.bench.suite
    best = next(n for n in (SCORED, "router+cascade", "router") if n in r.shares)
    row = r.bench.row(best)
    lines = [*_predicted_table(r), ""]
    if row is not None:
        share = r.shares[best]
        lines.append(
            f"**At the threshold chosen on calibration**, {best} keeps {row.rel_quality or 0:.1%} "
            f"of GPT-4's quality sending {share:.1%} of requests to it (a cost reduction of "
            f"{1 - share:.1%} by RouteLLM's measure)."
            + (f" RouteLLM's published router: 95% at {ROUTELLM[suite]:.0%} "
               f"(a reduction of {1 - ROUTELLM[suite]:.0%})." if suite in ROUTELLM else "")
        )  # fmt: skip
    for name, sweep in r.figures["sweeps"].items():
        point = cheapest_at(sweep)
        shown = (f"{point[2]:.1%} of the quality at {point[1]:.1%} to strong (threshold "
                 f"{point[0]:.3f})" if point else "no threshold keeps 95%")  # fmt: skip
        lines.append(
            f"- {name}, the cheapest threshold on the report part that keeps 95% (picked with "
            f"the report's outcomes, so an optimistic bound, not a result): {shown}."
        )
    return lines


def _calibration_lines(r: Replay, o: ReplayOptions) -> list[str]:
    c = r.calibration
    lines = [
        "", "### Chosen on the calibration part only", "",
        f"{c['rows']} rows: Mixtral right on {c['weak_right']:.1%}, GPT-4 on {c['strong_right']:.1%}. "
        f"Features: `{c['features']}`; model `{c['model']}` (best cross-validated AUC, "
        f"{o.folds} stratified folds); threshold {c['threshold']:.3f} on its out-of-fold "
        f"P(Mixtral right), the fewest strong calls keeping {o.target:.0%} of GPT-4's quality: "
        f"{c['router_quality_vs_strong']:.1%} of it at {c['router_share_strong']:.1%} to strong "
        "(out of fold). Tried (AUC, Brier; the gradient-boosted model is a reference, it is not "
        "serialisable):", "",
        "| features | model | AUC | Brier |", "|---|---|---|---|",
    ]  # fmt: skip
    for t in sorted(c["cv"], key=lambda t: -t["auc"]):
        lines.append(f"| {t['features']} | {t['candidate']} | {t['auc']:.3f} | {t['brier']:.3f} |")
    if "rules" in c:
        lines += ["", "Response-side check (the arithmetic of Mixtral's solution re-computed): "
                  "TPR = share of its right answers kept, FPR = share of its wrong ones kept; "
                  "as a cascade (a rejected answer goes to GPT-4):", "",
                  "| rule | TPR | FPR | cascade quality vs strong | share to strong |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {t['rule']} | {t['tpr']:.1%} | {t['fpr']:.1%} | "
            f"{t['quality_vs_strong']:.1%} | {t['share_strong']:.1%} |"
            for t in c["rules"]
        ]
        lines += ["", f"Chosen rule `{c['rule']}`; router+cascade threshold "
                  f"{c['cascade_threshold']:.3f} (the same choice, with a weak item checked)."]  # fmt: skip
    if "scorer" in c:
        lines += _scorer_lines(c["scorer"], o)
    return lines


def _scorer_lines(s: dict[str, Any], o: ReplayOptions) -> list[str]:
    lines = [
        "", "Scored cascade: every item goes to Mixtral; its answer is kept when a model of "
        "P(Mixtral right) from its response (the check's three rules, steps read, wrong steps, "
        "cut off, no final answer, a non-integer final, final = last step, final copied from the "
        "question, length, `=` count, hedging words; `response+router` adds the router's "
        "out-of-fold P(Mixtral right)) is >= the threshold, else the item goes to GPT-4. Chosen "
        f"like the router: `{s['model']}` on `{s['features']}` (best cross-validated AUC, "
        f"{o.folds} folds), threshold {s['threshold']:.3f} on its out-of-fold predictions for "
        f"{o.target:.0%} of GPT-4's quality at the fewest GPT-4 calls. Tried:", "",
        "| features | model | AUC | Brier |", "|---|---|---|---|",
    ]  # fmt: skip
    for t in sorted(s["cv"], key=lambda t: -t["auc"]):
        lines.append(f"| {t['features']} | {t['candidate']} | {t['auc']:.3f} | {t['brier']:.3f} |")
    return lines


def _check_lines(r: Replay) -> list[str]:
    h = r.bench.headroom
    if h is None or h.measured is None:
        return []
    tpr, fpr = h.measured
    return ["", f"The check on the report part: keeps {tpr:.1%} of Mixtral's right answers "
            f"and {fpr:.1%} of its wrong ones."]  # fmt: skip


def replay_lines(replay: Replay, options: ReplayOptions) -> list[str]:
    """The markdown lines the replay adds after the live report's sections."""
    out: list[str] = []
    out += _data_lines(replay, options)
    out += _share_table(replay)
    out += _verdict(replay)
    out += _check_lines(replay)
    out += _calibration_lines(replay, options)
    return out
