"""Fan-out speed-up: K parallel subagent tasks with 1 s model latency, tierflow vs bare LangGraph.

Run: python bench/fanout.py [--ks 8,32,128] [--rounds 5] [--delay 1.0] [--json out.json]

Each of the K tasks makes one model call whose reply sleeps ``--delay`` seconds (asyncio; the
scripted model's ``delay_s``); the supervisor's three calls are instant. The openai profile is
used, so no tier has a concurrency gate, and scripted models have no rate limiter. Wall time
(perf_counter) of tierflow's supervisor and of the bare twins (bench/_workload.py) is compared
with sequential = K x delay. Speed-up = sequential / wall; the ratio tierflow / bare speed-up
(= bare wall / tierflow wall) is taken per round. Target: >= 0.9 at every K.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import quiet_env, rotated, run_bench, saver, summary, table
from _workload import Workload, build_bare, build_tierflow, record, run_bare, run_tierflow

VARIANTS = ("tierflow", "bare+subgraphs", "bare plain")
BARES = ("bare+subgraphs", "bare plain")
TARGET = 0.9


async def _wall(variant: str, make_saver: Any, workload: Workload, replay: Any) -> float:
    async with make_saver() as cp:
        models = workload.models(1)
        if variant == "tierflow":
            graph = build_tierflow(workload, cp)
            t0 = time.perf_counter()
            await run_tierflow(graph, models, "async")
        else:
            graph = build_bare(replay, models, cp, subgraphs=variant == "bare+subgraphs")
            t0 = time.perf_counter()
            await run_bare(graph, "async")
        return time.perf_counter() - t0


async def bench_k(k: int, make_saver: Any, args: Any) -> dict[str, Any]:
    """All rounds at one K."""
    workload = Workload(k, delay_s=args.delay)
    async with make_saver() as cp:
        replay = await record(workload, cp)  # doubles as the warm-up
    sequential = k * args.delay
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in rotated(VARIANTS, r):
            walls[variant].append(await _wall(variant, make_saver, workload, replay))
        print(f"  K={k} round {r + 1}/{args.rounds}: "
              + ", ".join(f"{v} {walls[v][-1]:.2f}s" for v in VARIANTS), flush=True)  # fmt: skip
    speedups = {v: [sequential / w for w in walls[v]] for v in VARIANTS}
    ratios = {b: [x / t for t, x in zip(walls["tierflow"], walls[b], strict=True)] for b in BARES}
    return {
        "sequential_s": sequential,
        "wall_s": {v: summary(walls[v]) for v in VARIANTS},
        "speedup": {v: summary(speedups[v]) for v in VARIANTS},
        "ratio_tierflow_over_bare": {b: summary(ratios[b]) for b in BARES},
        "raw": {"wall_s": walls, "ratios": ratios},
    }


def report(results: dict[int, Any], args: Any) -> str:
    """The printed tables."""
    rows = []
    for k, res in results.items():
        for v in VARIANTS:
            w, s = res["wall_s"][v], res["speedup"][v]
            rows.append([f"K={k} {v}", res["sequential_s"], w["min"], w["median"], s["median"]])
    walls = table(["K / variant", "sequential s", "wall s min", "median", "speed-up (med)"], rows)
    rows = []
    for k, res in results.items():
        for b in BARES:
            s = res["ratio_tierflow_over_bare"][b]
            rows.append([f"K={k} tierflow / {b}", s["min"], s["median"], f">= {TARGET}"])
    ratios = table(["speed-up ratio (per round)", "min", "median", "target"], rows)
    head = (
        f"fanout: {args.delay:g} s per subagent call, {args.rounds} interleaved rounds, "
        f"checkpointer={args.checkpointer}, sequential = K x {args.delay:g} s"
    )
    return f"{head}\n\n{walls}\n\n{ratios}"


async def main_async(args: Any) -> dict[int, Any]:
    """Every K in turn."""
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        make_saver = saver(args.checkpointer, Path(tmp), None)
        return {k: await bench_k(k, make_saver, args) for k in args.ks}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", default="8,32,128", help="comma-separated fan-out widths")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (>= 5)")
    p.add_argument("--delay", type=float, default=1.0, help="simulated latency per call, s")
    p.add_argument("--checkpointer", choices=("memory", "sqlite"), default="memory")
    p.add_argument("--quick", action="store_true", help="K = 8, 32 only")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    args.ks = [8, 32] if args.quick else [int(k) for k in args.ks.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    quiet_env()
    return run_bench("fanout", parse(argv), main_async, report)


if __name__ == "__main__":
    sys.exit(main())
