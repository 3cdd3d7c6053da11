"""``tierflow calibrate GRAPH``: the start tier of each subagent of a supervisor graph.

A supervisor graph (``codebase_qa``, or any graph in langgraph.json whose spec declares an eval
suite) delegates to subagents that each start on a declared tier and climb when their work is
rejected. Whether starting cheap pays depends on the profile: with a weak cheap tier most
tasks climb anyway and pay for both tiers. Calibration measures it on the suite, in two runs
of the same graph under the ``tiered`` policy (so the supervisor, the answer and the checks
are the same in both):

1. **Declared.** Every subagent starts where the graph declares it.
2. **Top.** Every subagent that ran in (1) starts on the profile's flagship.

Per subagent: its quality in each run (the suite's own per-subagent metric when it has one,
else the quality of the items the subagent worked on), its cost (the requests recorded under
its name, at openai prices), how many of its tasks climbed. A subagent keeps its declared
start when that keeps at least ``target_quality`` x its quality in (2) and costs less; else
it starts on the flagship. The file (``.tierflow/calibration/<graph>.json``) holds the choice
and these figures with 95% intervals; the graph's subagents read it at run time
(:func:`tierflow.calibration.subagent_calibration`).

The two runs change each subagent's start together, so a subagent's figures in (2) include
the others' change too: the evidence says so (``joint: true``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tierflow.calibration import (
    Calibration,
    SubagentCalibration,
    calibration_path,
    save_calibration,
)
from tierflow.errors import InputError
from tierflow.evals._results import ExampleResult, SuiteResult
from tierflow.evals._runner import arun
from tierflow.evals._suites import SUITES
from tierflow.evals._sync import run_sync
from tierflow.evals.benchmark_report import wilson

__all__ = ["acalibrate_graph", "calibrate_graph", "choose_start", "subagent_figures"]


def calibrate_graph(suite: str, target_quality: float = 0.95, **kwargs: Any) -> Calibration:
    """Calibrate the start tier of each subagent of ``suite``'s graph (module docstring).

    Args:
        suite: an eval suite of a supervisor graph, e.g. ``codebase_qa``.
        target_quality: share of the flagship-start quality each subagent must keep.
        **kwargs: ``limit``, ``profile``, ``models`` (scripted doubles), ``retry``,
            ``response_cache``, ``out`` (default ``.tierflow/calibration/<graph>.json``),
            ``progress``.
    """
    return run_sync(acalibrate_graph(suite, target_quality, **kwargs))


async def acalibrate_graph(
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
) -> Calibration:
    """Async :func:`calibrate_graph`."""
    from tierflow.config import default_profile, load_config

    if suite not in SUITES or SUITES[suite].benchmark is not None:
        own = sorted(n for n, s in SUITES.items() if s.benchmark is None)
        raise InputError(f"no graph suite {suite!r} to calibrate subagents on; choose from {own}")
    if not 0 < target_quality <= 1:
        raise InputError(f"target_quality={target_quality}: give a share in (0, 1], e.g. 0.95")
    profile = profile or default_profile()
    top_tier = load_config(profile, require_keys=False).flagship
    common = dict(limit=limit, profile=profile, models=models, retry=retry,
                  response_cache=response_cache, progress=progress)  # fmt: skip
    base = Calibration(suite=suite, profile=profile, target_quality=target_quality, items=0,
                       subagents={})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        declared_file, top_file = Path(tmp) / "declared.json", Path(tmp) / "top.json"
        save_calibration(base, declared_file)  # no subagent entry: each starts as declared
        declared = await arun(suite, "tiered", calibration=str(declared_file), **common)
        names = sorted({r["subagent"] for e in declared.examples for r in e.usage
                        if r.get("subagent")})  # fmt: skip
        if not names:
            failed = [e for e in declared.examples if e.error]
            why = (f"{len(failed)} of {declared.n} items failed (first: {failed[0].error}); fix "
                   "that and re-run") if failed else (
                   "shortcuts answered every item: run more items (--limit)")  # fmt: skip
            raise InputError(f"suite {suite!r}: no subagent made a model request; {why}")
        tops = {n: SubagentCalibration(start_tier=top_tier) for n in names}
        save_calibration(base.model_copy(update={"subagents": tops}), top_file)
        top = await arun(suite, "tiered", calibration=str(top_file), **common)
    chosen: dict[str, SubagentCalibration] = {}
    for name in names:
        low, high = subagent_figures(declared, name), subagent_figures(top, name)
        start, why = choose_start(low, high, target_quality, top_tier)
        evidence = {"declared": low, "top": high, "chosen_because": why, "joint": len(names) > 1}
        chosen[name] = SubagentCalibration(start_tier=start, evidence=evidence)
    final = base.model_copy(update={"subagents": chosen, "items": declared.n})
    return save_calibration(final, out or calibration_path(SUITES[suite].graph))


def subagent_figures(result: SuiteResult, name: str) -> dict[str, Any]:
    """One subagent's figures in one run: start tier, quality (95% CI), cost, climbs, tasks."""
    worked = [e for e in result.examples if _records(e, name)]
    own = [e.subagent_quality[name] for e in worked if name in e.subagent_quality]
    scores = own or [e.quality for e in worked]
    k = sum(scores)
    low, high = wilson(k, len(scores)) if scores else (0.0, 0.0)
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in worked:
        for r in _records(e, name):
            tasks.setdefault((e.id, str(r.get("task_id"))), []).append(r)
    starts = [rs[0]["tier"] for rs in tasks.values()]
    return {
        "start_tier": max(set(starts), key=starts.count) if starts else None,
        "quality": round(k / len(scores), 4) if scores else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
        "own_metric": bool(own),
        "cost_usd": round(sum(r["cost_usd"] for rs in tasks.values() for r in rs), 10),
        "items": len(worked),
        "tasks": len(tasks),
        "climbed": sum(len({r["tier"] for r in rs}) > 1 for rs in tasks.values()),
        "run_quality": round(result.quality, 4),
        "run_cost_usd": result.cost_usd,
    }


def choose_start(
    declared: dict[str, Any], top: dict[str, Any], target_quality: float, top_tier: str
) -> tuple[str, str]:
    """The start tier and why: the declared one when it keeps the quality for less.

    Example:
        >>> low = {"start_tier": "mini", "quality": 0.9, "cost_usd": 0.02}
        >>> choose_start(low, {"quality": 1.0, "cost_usd": 0.03}, 0.95, "flagship")[0]
        'flagship'
        >>> choose_start(low, {"quality": 0.92, "cost_usd": 0.03}, 0.95, "flagship")[0]
        'mini'
    """
    tier = declared.get("start_tier") or top_tier
    floor = target_quality * top["quality"]
    if tier == top_tier:
        return top_tier, "it is declared on the flagship"
    if declared["quality"] < floor - 1e-12:
        return top_tier, (
            f"starting on {tier} keeps quality {declared['quality']:.3f}, under the floor "
            f"{floor:.3f} ({target_quality:.0%} of {top['quality']:.3f} starting on {top_tier})"
        )
    if declared["cost_usd"] >= top["cost_usd"]:
        return top_tier, (
            f"starting on {tier} costs ${declared['cost_usd']:.6f}, not less than "
            f"${top['cost_usd']:.6f} starting on {top_tier} (its tasks climb and pay twice)"
        )
    return tier, (
        f"starting on {tier} keeps quality {declared['quality']:.3f} >= {floor:.3f} for "
        f"${declared['cost_usd']:.6f} < ${top['cost_usd']:.6f}"
    )


def _records(example: ExampleResult, name: str) -> list[dict[str, Any]]:
    return [r for r in example.usage if r.get("subagent") == name]
