"""Replay RouteLLM's GPT-4 / Mixtral records: router, check and cascade without a model call.

``tierflow eval routellm-gsm8k`` (or ``routellm-mmlu``) reads what both models did on each item
(``shared/data/routellm/``), splits the rows into calibration and report parts by a hash of
their keys (:mod:`tierflow.evals._routellm_data`), and on the calibration part only:

- fits the difficulty router (:mod:`tierflow.difficulty`): feature set and model by
  cross-validated AUC, threshold on out-of-fold predictions for ``target`` x the strong
  model's quality at the fewest strong calls;
- for GSM8K, picks the rule of the response-side check (:mod:`tierflow.evals._replay_check`,
  the arithmetic of Mixtral's worked solution re-computed), router+cascade's threshold (a
  weak answer is kept when the router starts the item weak and the check passes), and the
  scored cascade: a model of P(Mixtral right) from its response (the check and the
  solution's shape, :data:`~tierflow.evals._replay_check.RESPONSE_FEATURES`, with or without
  the router's score), chosen and thresholded like the router (CV AUC; out-of-fold).

On the report part it replays all-strong (``all-flagship``), all-weak (``all-nano``), the
router, the cascade, router+cascade and the scored cascade (GSM8K), a perfect router and
random routing at the share of strong calls of the scored cascade (else the router), and
writes the live benchmarks' report (table, curve, headroom) plus RouteLLM's cost measure
(share of requests sent to the strong model) under ``.tierflow/reports/<suite>/``. Its
headline number is the share of the perfect router's saving captured at >= ``target`` of
GPT-4's quality (:func:`tierflow.evals.headroom.captured_share`, cost as share of requests).

Example:
    >>> from tierflow.evals.replay import REPLAYS
    >>> sorted(REPLAYS)
    ['routellm-gsm8k', 'routellm-mmlu']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tierflow._difficulty_fit import DEFAULT_CANDIDATES, Candidate, cross_validated
from tierflow.difficulty import DifficultyRouter, fit_router
from tierflow.errors import InputError
from tierflow.evals._bench_suites import TARGET_COST
from tierflow.evals._figures import threshold_sweep
from tierflow.evals._replay_cascade import cascade_threshold, rule_table, scorer_matrix, scorer_rows
from tierflow.evals._replay_check import check_solution
from tierflow.evals._replay_features import FEATURE_SETS, compact_path, feature_matrix, load_compact
from tierflow.evals._replay_policies import (
    SCORED,
    bootstrap_captured,
    item_costs,
    policy_result,
    strong_calls,
    tier_prices,
)
from tierflow.evals._replay_report import lead_lines, replay_lines
from tierflow.evals._results import SuiteResult
from tierflow.evals._routellm_data import ReplayRow, load_rows, split_rows
from tierflow.evals.benchmark_report import BenchReport, _relative, _row, _write
from tierflow.evals.headroom import captured_share, headroom

__all__ = ["REPLAYS", "ReplayOptions", "Replay", "replay_report", "replay_options"]

REPLAYS = {"routellm-gsm8k": "gsm8k", "routellm-mmlu": "mmlu"}
# What the cascade scorer may read: Mixtral's response, and also the router's P(weak right).
SCORER_SETS = ("response", "response+router")


@dataclass(frozen=True)
class ReplayOptions:
    """How a replay prices and fits (defaults: the ``openai`` profile, 95% of GPT-4)."""

    profile: str = "openai"
    weak_tier: str = "nano"  # Mixtral is priced as this tier
    strong_tier: str = "flagship"  # GPT-4 is priced as this tier
    target: float = 0.95
    # the target must hold with this confidence, not only on the calibration rows (a lower
    # bound, thresholds tested in a fixed sequence: tierflow.difficulty.choose_threshold)
    confidence: float | None = 0.9
    components: int = 32  # embedding components the router may read
    folds: int = 5
    seed: int = 0
    candidates: tuple[Candidate, ...] = DEFAULT_CANDIDATES  # the models cross-validation tries
    feature_sets: tuple[str, ...] = tuple(FEATURE_SETS)  # the feature sets it tries

    @property
    def needs_embeddings(self) -> bool:
        """Whether a feature set tried reads the prompt embedding."""
        return any("embedding" in FEATURE_SETS[name] for name in self.feature_sets)


@dataclass
class Replay:
    """What :func:`replay_report` computed and wrote."""

    bench: BenchReport
    router: DifficultyRouter
    calibration: dict[str, Any]  # what was tried and chosen on the calibration part
    shares: dict[str, float]  # policy -> share of report items that called the strong model
    results: dict[str, SuiteResult]  # every replayed policy, the perfect router too
    figures: dict[str, Any] = field(default_factory=dict)  # report-split extras (CIs, sweeps)
    scorer: DifficultyRouter | None = None  # the scored cascade's model (GSM8K)


@dataclass(frozen=True)
class _Fitted:
    router: DifficultyRouter
    parts: tuple[str, ...]
    oof: list[float]
    table: list[dict[str, Any]]


def _floats(values: Sequence[bool]) -> list[float]:
    return [float(v) for v in values]


Matrix = tuple[list[list[float]], tuple[str, ...]]  # feature rows and column names


def _select(
    matrices: Mapping[str, Matrix], rows: Sequence[ReplayRow], o: ReplayOptions
) -> tuple[DifficultyRouter, list[float], list[dict[str, Any]]]:
    """The model fitted on the feature set of the best cross-validated AUC (calibration only).

    Returns it (its threshold from out-of-fold predictions), those predictions and what was
    tried.
    """
    weak, strong = [r.weak_correct for r in rows], [r.strong_correct for r in rows]
    best: tuple[float, str, DifficultyRouter, list[list[float]]] | None = None
    table = []
    for name, (x, names) in matrices.items():
        router = fit_router(x, weak, strong, names, target=o.target, folds=o.folds,
                            seed=o.seed, candidates=o.candidates,
                            confidence=o.confidence)  # fmt: skip
        cv = {c["candidate"]: c["auc"] for c in router.evidence["cv"]}
        table += [{"features": name, **c} for c in router.evidence["cv"]]
        if best is None or cv[router.evidence["chosen"]] > best[0]:
            best = (cv[router.evidence["chosen"]], name, router, x)
    assert best is not None
    _, name, router, x = best
    chosen = next(c for c in o.candidates if c.label == router.evidence["chosen"])
    oof = cross_validated(x, weak, chosen, o.folds, o.seed)  # what the threshold was chosen on
    return replace(router, evidence=router.evidence | {"features": name}), oof, table


def _fit(
    cal: Sequence[ReplayRow], emb: Mapping[str, Any], domains: Sequence[str], o: ReplayOptions
) -> _Fitted:
    """The router on the prompt feature set with the best cross-validated AUC."""
    matrices = {name: feature_matrix(cal, emb, FEATURE_SETS[name], domains=domains,
                                     components=o.components) for name in o.feature_sets}  # fmt: skip
    router, oof, table = _select(matrices, cal, o)
    return _Fitted(router, FEATURE_SETS[router.evidence["features"]], oof, table)


def _fit_scorer(
    cal: Sequence[ReplayRow], oof: Sequence[float], o: ReplayOptions
) -> tuple[DifficultyRouter, list[dict[str, Any]]]:
    """The scored cascade's model: keep Mixtral's answer when P(right) >= its threshold.

    Fitted like the router (candidates by cross-validated AUC, threshold on out-of-fold
    predictions for ``target`` at the fewest strong calls); the router's score it may read is
    its out-of-fold one, so no calibration row is scored by a router fitted on it.
    """
    matrices = {name: scorer_matrix(cal, oof, name.endswith("router")) for name in SCORER_SETS}
    scorer, _, table = _select(matrices, cal, o)
    return scorer, table


def _policies(
    suite: str,
    rep: Sequence[ReplayRow],
    p: Sequence[float],
    fitted: dict[str, Any],
    o: ReplayOptions,
    q: Sequence[float] | None = None,
) -> tuple[dict[str, SuiteResult], dict[str, list[float]]]:
    """Every replayed policy on the report rows and, per policy, its strong calls per item.

    ``q``: the cascade scorer's P(weak right) per report row (GSM8K).
    """
    weak_p, strong_p = tier_prices(o.profile, o.weak_tier, o.strong_tier)
    costs = [item_costs(r, weak_p, strong_p) for r in rep]
    router = [1.0 if x >= fitted["threshold"] else 0.0 for x in p]
    oracle = [1.0 if r.weak_correct >= r.strong_correct else 0.0 for r in rep]
    plans: dict[str, tuple[list[float], list[bool] | None]] = {
        "all-flagship": ([0.0] * len(rep), None), "all-nano": ([1.0] * len(rep), None),
        "router": (router, None),
    }  # fmt: skip
    if fitted.get("rule"):
        kept = [check_solution(r.weak_response).passes(fitted["rule"]) for r in rep]
        plans["cascade"] = ([1.0] * len(rep), kept)
        joint = [1.0 if x >= fitted["cascade_threshold"] else 0.0 for x in p]
        plans["router+cascade"] = (joint, kept)
    if q is not None:
        plans[SCORED] = ([1.0] * len(rep), [x >= fitted["scorer"]["threshold"] for x in q])
    plans["perfect router"] = (oracle, None)
    # Random routing at the share of strong calls of the best routed policy, as live reports do.
    matched = strong_calls(*plans[SCORED if SCORED in plans else "router"])
    plans["random"] = ([1 - sum(matched) / len(rep)] * len(rep), None)
    results = {name: policy_result(suite, name, rep, costs, weak, o.profile, accepted)
               for name, (weak, accepted) in plans.items()}  # fmt: skip
    calls = {name: strong_calls(weak, accepted) for name, (weak, accepted) in plans.items()}
    return results, calls


def _curve(
    results: Mapping[str, SuiteResult], p: Sequence[float]
) -> list[tuple[float, float, float]]:
    """The threshold sweep in the live report's terms (USD and quality vs all-flagship)."""
    top = results["all-flagship"]
    base = results.get("cascade") or results["all-nano"]
    sweep = threshold_sweep(p, [(e.quality, e.cost_usd) for e in base.examples],
                            [(e.quality, e.cost_usd) for e in top.examples])  # fmt: skip
    if not top.cost_usd or not top.quality:
        return []
    return [(t, c / top.cost_usd, q / top.quality) for t, c, q in sweep]


def _share_sweep(
    p: Sequence[float],
    path_q: Sequence[float],
    path_calls: Sequence[float],
    strong: Sequence[float],
) -> list[tuple[float, float, float]]:
    """(threshold, share to strong, quality vs strong) over the thresholds, RouteLLM's axes."""
    top = sum(strong) / len(strong)
    sweep = threshold_sweep(p, list(zip(path_q, path_calls, strict=True)),
                            [(s, 1.0) for s in strong])  # fmt: skip
    return [(t, c / len(p), q / top if top else 0.0) for t, c, q in sweep]


def _calibrate(
    name: str, cal: Sequence[ReplayRow], emb: Mapping[str, Any], o: ReplayOptions
) -> tuple[_Fitted, dict[str, Any]]:
    """Everything chosen on the calibration part, with what was tried."""
    domains = sorted({r.domain for r in cal if r.domain})
    fit = _fit(cal, emb, domains, o)
    chosen: dict[str, Any] = {
        "rows": len(cal), "domains": domains, "features": fit.router.evidence["features"],
        "model": fit.router.evidence["chosen"], "threshold": fit.router.threshold,
        "router_quality_vs_strong": fit.router.evidence["calibration_quality_vs_strong"],
        "router_share_strong": fit.router.evidence["calibration_share_strong"],
        "cv": fit.table, "weak_right": sum(r.weak_correct for r in cal) / len(cal),
        "strong_right": sum(r.strong_correct for r in cal) / len(cal),
    }  # fmt: skip
    chosen["predicted"] = {"router": {"quality_vs_strong": chosen["router_quality_vs_strong"],
                                      "share_strong": chosen["router_share_strong"]}}  # fmt: skip
    if name == "gsm8k":
        rule, rules = rule_table(cal, o.target)
        threshold, joint = cascade_threshold(cal, fit.oof, rule, o.target, o.confidence)
        chosen |= {"rule": rule, "rules": rules, "cascade_threshold": threshold}
        chosen["predicted"] |= {"cascade": _pick(next(t for t in rules if t["rule"] == rule)),
                                "router+cascade": joint}  # fmt: skip
    return fit, chosen


def _pick(figures: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(float(figures[k]), 4) for k in ("quality_vs_strong", "share_strong")}


def _calibrate_scorer(
    cal: Sequence[ReplayRow], fit: _Fitted, chosen: dict[str, Any], o: ReplayOptions
) -> DifficultyRouter:
    """Fit the scored cascade on calibration; add what it chose and tried to ``chosen``."""
    scorer, tried = _fit_scorer(cal, fit.oof, o)
    e = scorer.evidence
    chosen["scorer"] = {"features": e["features"], "model": e["chosen"],
                        "threshold": scorer.threshold, "cv": tried}  # fmt: skip
    chosen["predicted"][SCORED] = {"quality_vs_strong": e["calibration_quality_vs_strong"],
                                   "share_strong": e["calibration_share_strong"]}  # fmt: skip
    return scorer


def replay_options(suite: str, **fields: Any) -> ReplayOptions:
    """Options for ``suite``: without its committed embeddings, structure features only.

    Example:
        >>> replay_options("routellm-gsm8k", target=0.9).target
        0.9
    """
    options = ReplayOptions(**fields)
    name = REPLAYS.get(suite, "")
    if "feature_sets" not in fields and not compact_path(name).is_file():
        options = replace(options, feature_sets=("structure",))
    return options


def replay_report(
    suite: str,
    *,
    embeddings: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    options: ReplayOptions | None = None,
) -> Replay:
    """Replay ``suite`` (a key of :data:`REPLAYS`) and write its report.

    Args:
        suite: ``routellm-gsm8k`` or ``routellm-mmlu``.
        embeddings: ``key -> vector`` (default: the committed compact copy in bench/results);
            rows without one are left out.
        data_dir: the RouteLLM files (default ``shared/data/routellm``).
        out_dir: report folder (default ``.tierflow/reports/<suite>``).
        options: prices, target and fitting (:class:`ReplayOptions`).
    """
    if suite not in REPLAYS:
        raise InputError(f"unknown replay {suite!r}; use one of {sorted(REPLAYS)}")
    o, name = options or ReplayOptions(), REPLAYS[suite]
    emb: Mapping[str, Any] = {}
    if o.needs_embeddings:
        emb = embeddings if embeddings is not None else load_compact(compact_path(name))
    every = load_rows(name, data_dir)
    rows = [r for r in every if r.key in emb] if o.needs_embeddings else every
    cal, rep = split_rows(rows)
    if len(cal) < 4 * o.folds or not rep:
        raise InputError(f"{len(cal)} calibration and {len(rep)} report rows of {suite} have "
                         "embeddings: too few to fit and report; compute them first")  # fmt: skip
    fit, chosen = _calibrate(name, cal, emb, o)
    scorer = _calibrate_scorer(cal, fit, chosen, o) if name == "gsm8k" else None
    x, _ = feature_matrix(rep, emb, fit.parts, domains=chosen["domains"], components=o.components)
    p = fit.router.p_weak(x)
    q = scorer.p_weak(scorer_rows(scorer, rep, p)) if scorer else None
    results, calls = _policies(suite, rep, p, chosen, o, q)
    # The perfect router is a bound, not a policy: the headroom section and the share table
    # show it; the table and headline of policies do not.
    ran = [r for name, r in results.items() if name != "perfect router"]
    rows_out = [_row(r) for r in ran]
    _relative(rows_out)
    label = f"{chosen['model']} on {chosen['features']}, threshold {chosen['threshold']:.3f}"
    report = BenchReport(suite, "report", o.profile, ran, rows_out,
                         _curve(results, p), label, out_dir or Path(".tierflow") / "reports" / suite,
                         curve_label="router+cascade, threshold swept" if "cascade" in results
                         else "router, threshold swept")  # fmt: skip
    report.headroom = headroom(results["all-nano"], results["all-flagship"], results.get("cascade"),
                               router=results["router"], cost=TARGET_COST.get(suite, 0.5))  # fmt: skip
    strong = _floats([r.strong_correct for r in rep])
    figures = _figures(results, calls, p, strong, q)
    shares = {k: sum(v) / len(v) for k, v in calls.items()}
    out = Replay(report, fit.router, chosen, shares, results, figures, scorer)
    figures["rows"] = {"file": len(every), "embedded": len(rows), "calibration": len(cal),
                       "report": len(rep)}  # fmt: skip
    _captured(out, calls, o.target)
    _write(report)
    _write_extras(out, o)
    return out


def _captured(replay: Replay, calls: Mapping[str, list[float]], target: float) -> None:
    """The headline number on RouteLLM's cost measure, with its bootstrap interval."""
    top = replay.results["all-flagship"].quality
    points = [(name, replay.shares[name], r.quality / top if top else 0.0)
              for name, r in replay.results.items()
              if name not in ("all-flagship", "perfect router")]  # fmt: skip
    c = captured_share(points, replay.shares["perfect router"], quality=target,
                       measure="share of requests sent to the strong model")  # fmt: skip
    replay.bench.captured = c
    if c.policy is not None:
        replay.figures["captured_ci"] = bootstrap_captured(calls[c.policy], calls["perfect router"])
    replay.bench.lead = lead_lines(replay)


def _figures(
    results: Mapping[str, SuiteResult], calls: Mapping[str, list[float]], p: Sequence[float],
    strong: Sequence[float], q: Sequence[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Bootstrap intervals per policy and the sweeps on RouteLLM's axes (report split)."""
    from tierflow.evals._replay_policies import bootstrap_ratio

    cis = {}
    for name, result in results.items():
        quality = [e.quality for e in result.examples]
        cis[name] = bootstrap_ratio(quality, strong, calls[name])
    weak = results["all-nano"]
    sweeps = {"router": _share_sweep(p, [e.quality for e in weak.examples],
                                     [0.0] * len(p), strong)}  # fmt: skip
    if "cascade" in results:
        sweeps["router+cascade"] = _share_sweep(
            p, [e.quality for e in results["cascade"].examples], calls["cascade"], strong
        )
    if q is not None:
        sweeps[SCORED] = _share_sweep(q, [e.quality for e in weak.examples], [0.0] * len(q), strong)
    return {"ci": cis, "sweeps": sweeps}


def _write_extras(replay: Replay, o: ReplayOptions) -> None:
    """The replay sections after the live report's, the router file and the replay's JSON."""
    bench = replay.bench
    text = bench.to_markdown() + "\n" + "\n".join(replay_lines(replay, o)) + "\n"
    bench.markdown_path.write_text(text)
    replay.router.save(bench.out_dir / "router.json")
    if replay.scorer is not None:
        replay.scorer.save(bench.out_dir / "scorer.json")
    (bench.out_dir / "replay.json").write_text(json.dumps(
        {"options": o.__dict__, "calibration": replay.calibration, "shares": replay.shares,
         "figures": replay.figures}, indent=1, default=str))  # fmt: skip
