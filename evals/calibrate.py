"""``tierflow calibrate``: measure the tiers on a benchmark's calibration split, write the file.

Three stages, all through the benchmark's graph with the response cache on:

1. **Tiers.** all-<tier> for every tier of the ladder: which tier answers each item right, at
   what cost. A middle tier no better than the one below it is left out of the cascade's
   ladder (on the local profile mini and nano are one model). The static start tier is the
   cheapest whose quality is at least ``target_quality`` x all-flagship's.
2. **Cascade.** The cascade over that ladder, with its verifier: each item's outcome and cost.
   A verifier declared with ``repairs`` is measured both ways (a repair sent back to the tier,
   and a climb at the first rejection); the repairs are kept only when they pay: at least the
   same right answers, at a lower cost per right answer.
3. **Router.** A logistic model on the task text predicts whether the cheapest tier answers
   right (trained on stage 1's labels). Its threshold is the one with the lowest cost whose
   router+cascade quality is still >= ``target_quality`` x all-flagship's, chosen on
   out-of-fold predictions (5 folds), so the threshold is not tuned on the model's own
   training fit.

The file (``.tierflow/calibration/<suite>.json``) keeps the evidence: per-tier quality and
cost, the cascade's, the threshold sweep, item counts and 95% intervals.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tierflow.calibration import (
    Calibration,
    RouterModel,
    SubagentCalibration,
    VerifierSettings,
    calibration_path,
    save_calibration,
    train_router,
)
from tierflow.errors import InputError
from tierflow.evals._results import SuiteResult
from tierflow.evals._runner import arun
from tierflow.evals._suites import SUITES, load_items
from tierflow.evals._sync import run_sync
from tierflow.evals.benchmark_report import threshold_sweep, wilson

__all__ = [
    "calibrate", "acalibrate", "calibrate_for_report", "choose_threshold", "repairs_pay", "FOLDS",
]  # fmt: skip

FOLDS = 5
# The router threshold keeps the target with this confidence (as the replays choose theirs).
CONFIDENCE = 0.9


def _by_id(result: SuiteResult) -> dict[str, Any]:
    return {e.id: e for e in result.examples}


def choose_threshold(
    p_cheap: Sequence[float],
    cheap_path: Sequence[tuple[float, float]],
    top_path: Sequence[tuple[float, float]],
    target: float = 0.95,
    confidence: float | None = CONFIDENCE,
) -> tuple[float, list[tuple[float, float, float]]]:
    """The cheapest threshold keeping ``target`` x the top path's quality, and the sweep.

    Item i starts cheap when ``p_cheap[i] >= threshold`` and scores ``cheap_path[i]`` (quality,
    cost), else ``top_path[i]``. The choice is :func:`tierflow.difficulty.choose_threshold`'s,
    the one the replays make: with a ``confidence`` (0.9 by default), the target must hold with
    that confidence, thresholds tested in a fixed sequence from everything on the top path;
    None keeps it on these rows only. Returns (threshold,
    :func:`~tierflow.evals.benchmark_report.threshold_sweep`'s rows).

    Example:
        >>> t, _ = choose_threshold([0.9, 0.2], [(1, 1), (0, 1)], [(1, 10), (1, 10)], 1.0)
        >>> t
        0.9
    """
    from tierflow.difficulty import choose_threshold as cheapest_keeping

    theta = cheapest_keeping(
        p_cheap,
        [q for q, _ in cheap_path],
        [q for q, _ in top_path],
        target,
        [c for _, c in cheap_path],
        [c for _, c in top_path],
        confidence,
    )
    return theta, threshold_sweep(p_cheap, cheap_path, top_path)


def _out_of_fold(texts: list[str], labels: list[bool]) -> list[float]:
    """Each item's P(cheap is right) from a router trained without its fold."""
    probe = RouterModel(weights=[], threshold=0.5, cheap_tier="", strong_tier="")
    out = [0.0] * len(texts)
    for k in range(FOLDS):
        train = [i for i in range(len(texts)) if i % FOLDS != k]
        test = [i for i in range(len(texts)) if i % FOLDS == k]
        if not test:
            continue
        w, b = train_router([texts[i] for i in train], [labels[i] for i in train])
        model = probe.model_copy(update={"weights": w, "bias": b})
        for i in test:
            out[i] = model.p_cheap(texts[i])
    return out


def _figures(result: SuiteResult) -> dict[str, Any]:
    k = sum(e.quality for e in result.examples)
    low, high = wilson(k, result.n)
    return {"quality": round(result.quality, 4), "ci95": [round(low, 4), round(high, 4)],
            "cost_usd": result.cost_usd, "n": result.n}  # fmt: skip


async def acalibrate(
    suite: str,
    target_quality: float = 0.95,
    *,
    limit: int | None = None,
    profile: str | None = None,
    models: Any = None,
    retry: Any = None,
    response_cache: str | None = None,
    out: str | Path | None = None,
    progress: Callable[[Any], None] | None = None,
    confidence: float | None = CONFIDENCE,
) -> Calibration:
    """Async :func:`calibrate`."""
    from tierflow.config import default_profile, load_config
    from tierflow.graphs.benchmarks.specs import CASCADES

    if suite not in CASCADES:
        raise InputError(f"no calibration for suite {suite!r}; choose from {sorted(CASCADES)}")
    if not 0 < target_quality <= 1:
        raise InputError(f"target_quality={target_quality}: give a share in (0, 1], e.g. 0.95")
    spec, profile = CASCADES[suite], profile or default_profile()
    config = load_config(profile, require_keys=False)
    common = dict(limit=limit, profile=profile, models=models, retry=retry, split="calib",
                  response_cache=response_cache, progress=progress)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        blank = str(Path(tmp) / "none.json")  # stage 1 runs with no calibration at all
        base = _blank(suite, spec, profile, target_quality, config.ladder, blank)
        tiers = {t: await arun(suite, _all(t), calibration=blank, **common)
                 for t in config.ladder}  # fmt: skip
        top = tiers[config.flagship]
        floor = target_quality * top.quality
        ladder = _ladder(config.ladder, tiers)
        start = next((t for t in ladder if tiers[t].quality >= floor), config.flagship)
        interim = str(Path(tmp) / "interim.json")
        save_calibration(_with(base, start_tier=start, ladder=ladder), interim)
        cascade = await arun(suite, "cascade", calibration=interim, **common)
        repairs, compared = spec.verifier.repairs, None
        if repairs:  # the same cascade climbing at the first rejection: do the repairs pay?
            plain = _with(base, start_tier=start, ladder=ladder, verifier=_verifier(spec, 0))
            save_calibration(plain, interim)
            unrepaired = await arun(suite, "cascade", calibration=interim, **common)
            compared = {"declared": repairs, "with": _figures(cascade),
                        "without": _figures(unrepaired)}  # fmt: skip
            if not repairs_pay(cascade, unrepaired):
                cascade, repairs = unrepaired, 0
            compared["kept"] = repairs
    items = load_items(suite, limit, "calib")
    texts = [spec.route_text(SUITES[suite].make_input(i)["task"]) for i in items]
    cheap = _by_id(tiers[ladder[0]])
    labels = [cheap[str(i["id"])].quality >= 1.0 for i in items]
    oof = _out_of_fold(texts, labels)
    casc, tops = _by_id(cascade), _by_id(top)
    theta, sweep = choose_threshold(
        oof,
        [(casc[str(i["id"])].quality, casc[str(i["id"])].cost_usd) for i in items],
        [(tops[str(i["id"])].quality, tops[str(i["id"])].cost_usd) for i in items],
        target_quality,
        confidence,
    )
    w, b = train_router(texts, labels)
    router = RouterModel(weights=w, bias=b, threshold=min(theta, 1.0), cheap_tier=ladder[0],
                         strong_tier=config.flagship)  # fmt: skip
    evidence = {
        "tiers": {t: _figures(r) for t, r in tiers.items()},
        "cascade": _figures(cascade),
        "floor_quality": round(floor, 4),
        "confidence": confidence,
        "cheap_right": sum(labels),
        **({"repairs": compared} if compared else {}),
        "threshold_sweep": [
            {"threshold": t, "cost_vs_flagship": round(c / top.cost_usd, 4) if top.cost_usd else None,
             "quality": round(q, 4)}
            for t, c, q in sweep
        ],
    }  # fmt: skip
    final = _with(base, start_tier=start, ladder=ladder, router=router,
                  verifier=_verifier(spec, repairs),
                  evidence=evidence)  # fmt: skip
    return save_calibration(final, out or calibration_path(suite))


def repairs_pay(repaired: SuiteResult, plain: SuiteResult) -> bool:
    """Whether a cascade's repairs pay: at least the plain cascade's right answers, each for less.

    Example:
        >>> from types import SimpleNamespace as R
        >>> repairs_pay(R(quality=0.56, n=100, cost_usd=0.088), R(quality=0.55, n=100, cost_usd=0.079))
        False
        >>> repairs_pay(R(quality=0.60, n=100, cost_usd=0.080), R(quality=0.55, n=100, cost_usd=0.079))
        True
    """
    right, right_plain = repaired.quality * repaired.n, plain.quality * plain.n
    if right < right_plain or right == 0:
        return False
    return right_plain == 0 or repaired.cost_usd / right < plain.cost_usd / right_plain


def _verifier(spec: Any, repairs: int) -> VerifierSettings:
    v = spec.verifier
    return VerifierSettings(kind=v.kind, samples=v.samples, temperature=v.temperature,
                            repairs=repairs)  # fmt: skip


def _all(tier: str) -> Any:
    import dataclasses

    from tierflow.tiers import POLICIES

    return dataclasses.replace(POLICIES["all-nano"], name=f"all-{tier}", subagent_tier=tier,
                               planner_tier=tier)  # fmt: skip


def _ladder(ladder: Sequence[str], tiers: dict[str, SuiteResult]) -> list[str]:
    """The cascade's tiers: a middle tier must beat the one kept below it."""
    kept = [ladder[0]]
    for tier in ladder[1:-1]:
        if tiers[tier].quality > tiers[kept[-1]].quality:
            kept.append(tier)
    return [*kept, ladder[-1]]


def _blank(suite: str, spec: Any, profile: str, target: float, ladder: Sequence[str],
           path: str) -> Calibration:  # fmt: skip
    base = Calibration(suite=suite, profile=profile, target_quality=target, items=0,
                       subagents={spec.subagent.name: SubagentCalibration(
                           start_tier=spec.subagent.tier, ladder=list(ladder))})  # fmt: skip
    save_calibration(base, path)
    return base


def _with(base: Calibration, **changes: Any) -> Calibration:
    name = next(iter(base.subagents))
    sub = base.subagents[name].model_copy(update=changes)
    items = changes.get("evidence", {}).get("tiers", {})
    n = next(iter(items.values()))["n"] if items else base.items
    return base.model_copy(update={"subagents": {name: sub}, "items": n})


def calibrate(suite: str, target_quality: float = 0.95, **kwargs: Any) -> Calibration:
    """Calibrate ``suite``'s graph for ``target_quality`` (see the module docstring).

    Args:
        suite: ``gsm8k``, ``mmlu``, ``mbpp`` or ``bfcl``.
        target_quality: share of all-flagship's quality to keep, e.g. 0.95.
        **kwargs: ``limit``, ``profile``, ``models`` (scripted doubles), ``retry``,
            ``response_cache``, ``out`` (default ``.tierflow/calibration/<suite>.json``),
            ``progress``, ``confidence`` (0.9: the router's threshold keeps the target with
            90% confidence, see :func:`choose_threshold`; None: on the calibration items only).

    Returns:
        The calibration written (with its version).
    """
    return run_sync(acalibrate(suite, target_quality, **kwargs))


def calibrate_for_report(
    suite: str, target_quality: float = 0.95, out: str | Path | None = None, **kwargs: Any
) -> list[tuple[Calibration, Path]]:
    """Calibrate every graph ``suite``'s report runs: its own, then each variant's.

    BFCL's report also runs its items through ``bfcl_native`` (native tool calling), which
    loads its own calibration (``.tierflow/calibration/bfcl_native.json``); without one its
    cascade climbs the profile's whole ladder. ``out`` names the suite's own file only.

    Returns:
        (calibration, file) per graph, the suite's first.
    """
    from tierflow.calibration import calibration_path
    from tierflow.evals._bench_suites import VARIANTS

    files = {suite: Path(out) if out else calibration_path(suite)}
    files |= {v.suite: calibration_path(v.suite) for v in VARIANTS.get(suite, ())}
    return [(calibrate(name, target_quality, out=file, **kwargs), file)
            for name, file in files.items()]  # fmt: skip
