"""CPU per model call: tierflow's supervisor vs bare LangGraph making the same calls.

Run: python bench/overhead.py [--rounds 7] [--runs 10] [--tasks 4] [--no-postgres] [--json out.json]

For each checkpointer (InMemorySaver, AsyncSqliteSaver on a temp file, AsyncPostgresSaver on a
throwaway server this script starts and stops), three variants run the same model calls with
the same durability, interleaved round by round:

- tierflow: build_supervisor_graph with two subagents (see bench/_workload.py);
- bare+subgraphs: plain LangGraph, one compiled subgraph per task dispatched with Send;
- bare plain: plain LangGraph, plain nodes.

CPU is time.process_time() of this process (all threads, so aiosqlite's too; not the
PostgreSQL server's) over ``runs`` runs, divided by the model calls the scripted models saw.
Ratios are taken per round (paired), then min and median. Targets: tierflow <= 1.15x
bare+subgraphs and <= 2.0x bare plain. Nothing fails: it only prints.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    postgres_server,
    quiet_env,
    rotated,
    run_bench,
    saver,
    summary,
    table,
)
from _workload import (
    Workload,
    build_bare,
    build_tierflow,
    calls_made,
    record,
    run_bare,
    run_tierflow,
)

VARIANTS = ("tierflow", "bare+subgraphs", "bare plain")
TARGETS = {"bare+subgraphs": 1.15, "bare plain": 2.0}


async def _one(variant: str, make_saver: Any, workload: Workload, replay: Any, args: Any) -> float:
    """CPU ms per model call of ``args.runs`` runs of ``variant`` on a fresh checkpointer."""
    async with make_saver() as cp:
        models = workload.models(args.runs)
        if variant == "tierflow":
            graph = build_tierflow(workload, cp)
        else:
            graph = build_bare(replay, models, cp, subgraphs=variant == "bare+subgraphs")
        gc.collect()
        before, t0 = calls_made(models), time.process_time()
        for _ in range(args.runs):
            if variant == "tierflow":
                await run_tierflow(graph, models, args.durability)
            else:
                await run_bare(graph, args.durability)
        cpu = time.process_time() - t0
        calls = calls_made(models) - before
    if calls != workload.calls * args.runs:
        raise RuntimeError(f"{variant}: {calls} calls, expected {workload.calls * args.runs}")
    return 1000 * cpu / calls


async def bench_checkpointer(kind: str, workdir: Path, pg_url: str | None, args: Any) -> dict:
    """All rounds for one checkpointer."""
    workload = Workload(args.tasks)
    make_saver = saver(kind, workdir, pg_url)
    async with make_saver() as cp:
        replay = await record(workload, cp)
    warm = argparse.Namespace(**{**vars(args), "runs": 1})
    for variant in VARIANTS:  # imports, compiled schemas, first connections
        await _one(variant, make_saver, workload, replay, warm)
    per: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in rotated(VARIANTS, r):
            per[variant].append(await _one(variant, make_saver, workload, replay, args))
        print(f"  {kind} round {r + 1}/{args.rounds}: "
              + ", ".join(f"{v} {per[v][-1]:.3f}" for v in VARIANTS), flush=True)  # fmt: skip
    ratios = {b: [t / x for t, x in zip(per["tierflow"], per[b], strict=True)] for b in TARGETS}
    return {
        "cpu_ms_per_call": {v: summary(per[v]) for v in VARIANTS},
        "ratios": {b: summary(ratios[b]) for b in TARGETS},
        "raw": {"cpu_ms_per_call": per, "ratios": ratios},
    }


def report(results: dict[str, Any], args: Any) -> str:
    """The printed tables."""
    rows = []
    for kind, res in results.items():
        for v in VARIANTS:
            s = res["cpu_ms_per_call"][v]
            rows.append([f"{kind} / {v}", s["min"], s["median"]])
    cpu = table(["checkpointer / variant", "CPU ms/call min", "median"], rows)
    rows = []
    for kind, res in results.items():
        for b, target in TARGETS.items():
            s = res["ratios"][b]
            rows.append([f"{kind}: tierflow / {b}", s["min"], s["median"], f"<= {target}x"])
    ratios = table(["ratio (per round)", "min", "median", "target"], rows)
    head = (
        f"overhead: {args.tasks} tasks/run -> {args.tasks + 3} model calls/run, {args.runs} "
        f"runs/round, {args.rounds} interleaved rounds, durability={args.durability}"
    )
    return f"{head}\n\n{cpu}\n\n{ratios}"


async def main_async(args: Any) -> dict[str, Any]:
    """Run every checkpointer; PostgreSQL is started here and always stopped."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for kind in ("memory", "sqlite"):
            results[kind] = await bench_checkpointer(kind, Path(tmp), None, args)
        if not args.no_postgres:
            with postgres_server() as url:
                results["postgres"] = await bench_checkpointer("postgres", Path(tmp), url, args)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (>= 5)")
    p.add_argument("--runs", type=int, default=10, help="graph runs per variant per round")
    p.add_argument("--tasks", type=int, default=4, help="parallel subagent tasks per run")
    p.add_argument("--durability", choices=("sync", "async", "exit"), default="async")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL checkpointer")
    p.add_argument("--quick", action="store_true", help="5 rounds of 3 runs")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.runs = 5, 3
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    quiet_env()
    return run_bench("overhead", parse(argv), main_async, report)


if __name__ == "__main__":
    sys.exit(main())
