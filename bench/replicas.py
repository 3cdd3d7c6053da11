"""Scale-out: throughput of 1 vs 2 Aegra replicas, and recovery of a killed replica's runs.

Run: python bench/replicas.py [--rounds 3] [--runs 40] [--delay 1.0] [--jobs 10] [--json out.json]

Starts its own PostgreSQL, Redis and a stand-in model server whose every reply takes
``--delay`` seconds (the routing graph of langgraph.json: one model request per run), and
replicas through :mod:`tierflow.serve` (what ``tierflow serve`` runs), each running at most
``--jobs`` runs at once. Per round, interleaved: ``--runs`` concurrent runs submitted through
one replica with 1 replica up, then spread over 2 replicas; throughput = runs / wall time from
the first submission to the last run finished. Then a recovery trial: the runs are submitted,
one replica is killed with SIGKILL while they are in flight, and the time from the kill to the
last run finished is measured. Targets: 2 replicas >= 1.7x the throughput of 1; recovery
< 30 s. Nothing fails here: it only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import postgres_server, quiet_env, summary, table, write_json

from tierflow.testing import free_port

REPO = Path(__file__).resolve().parents[1]
PRICES = {"nano": (0.05, 0.005, 0.4), "mini": (0.25, 0.025, 2.0), "flagship": (1.25, 0.125, 10.0)}
TARGET_RATIO, TARGET_RECOVERY_S = 1.7, 30.0


async def _batch(urls: list[str], runs: int, kill: Any = None) -> tuple[float, float | None]:
    """Submit ``runs`` routing runs round-robin over ``urls``; wall s (and s after the kill)."""
    from langgraph_sdk import get_client

    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    item = SUITES["routing"].make_input(load_items("routing")[0])
    clients = [get_client(url=u, api_key=None, timeout=300) for u in urls]
    t0 = time.time()  # wall clock: the servers' run timestamps are on this machine's clock

    async def submit(i: int) -> tuple[str, str]:
        client = clients[i % len(clients)]
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, "routing", input=item, context={"unattended": True})
        return str(tid), str(run["run_id"])

    submitted = await asyncio.gather(*(submit(i) for i in range(runs)))
    killed_at = None
    if kill is not None:
        await asyncio.sleep(0.5)
        kill()
        killed_at = time.time()
    reader = clients[0]
    ended: dict[str, float] = {}

    async def check(tid: str, run_id: str) -> None:
        run = await reader.runs.get(tid, run_id)
        if run["status"] in ("success", "error", "interrupted"):
            if run["status"] != "success":
                raise RuntimeError(f"run {run_id} ended {run['status']}")
            ended[run_id] = _epoch(run["updated_at"])

    # Poll gently (the finish times come from the server, not from when this loop looks).
    while len(ended) < len(submitted):
        await asyncio.gather(*(check(t, r) for t, r in submitted if r not in ended))
        if time.time() - t0 > 600:
            raise RuntimeError(f"{len(submitted) - len(ended)} runs did not finish in 600 s")
        if len(ended) < len(submitted):
            await asyncio.sleep(1.0)
    done = max(ended.values())
    return done - t0, (done - killed_at if killed_at is not None else None)


def _epoch(stamp: Any) -> float:
    from datetime import datetime

    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def main_run(args: argparse.Namespace) -> dict[str, Any]:
    """Every round and the recovery trial; servers are started here and always stopped."""
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import StandIn, profile_toml
    from tierflow.serve import Replica, ServerConfig, server_env

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is not installed: apt-get install -y redis-server")
    oracle = oracle_responder("routing")

    def slow(request: dict[str, Any]) -> dict[str, Any]:
        time.sleep(args.delay)
        return oracle(request)

    results: dict[str, Any] = {"throughput": {"1": [], "2": []}, "ratio": [], "recovery_s": []}
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp, postgres_server() as pg:
        rport = free_port()
        redis = subprocess.Popen(
            [redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            with StandIn(responder=slow) as stand_in:
                config = Path(tmp) / "tierflow.toml"
                config.write_text(profile_toml("bench", stand_in.base_url, PRICES, timeout_s=60.0))
                extra = {"TIERFLOW_CONFIG": str(config), "TIERFLOW_PROFILE": "bench",
                         "STAND_IN_KEY": "sk-stand-in", "LANGSMITH_TRACING": "false"}  # fmt: skip
                cfg = ServerConfig(
                    database_url=pg, redis_url=f"redis://127.0.0.1:{rport}/0",
                    jobs_per_replica=args.jobs, env_dir=REPO / ".tierflow" / "server-venv",
                )  # fmt: skip
                python = server_env(cfg, REPO / "langgraph.json")

                def start(name: str) -> Replica:
                    log = Path(tmp) / f"{name}.log"
                    r = Replica(python, cfg, REPO / "langgraph.json", free_port(), log, extra)
                    r.wait_ready()
                    return r

                a = start("a")
                asyncio.run(_batch([a.url], 2))  # warm: imports, graphs, connections
                for r in range(args.rounds):
                    one, _ = asyncio.run(_batch([a.url], args.runs))
                    b = start(f"b{r}")
                    two, _ = asyncio.run(_batch([a.url, b.url], args.runs))
                    b.stop()
                    results["throughput"]["1"].append(args.runs / one)
                    results["throughput"]["2"].append(args.runs / two)
                    results["ratio"].append(one / two)
                    print(f"  round {r + 1}/{args.rounds}: 1 replica {one:.1f} s, 2 replicas "
                          f"{two:.1f} s -> {one / two:.2f}x", flush=True)  # fmt: skip
                for r in range(args.kills):
                    b = start(f"k{r}")
                    _, recovery = asyncio.run(_batch([a.url, b.url], args.runs, kill=b.kill))
                    results["recovery_s"].append(recovery)
                    print(f"  recovery trial {r + 1}/{args.kills}: last run finished "
                          f"{recovery:.1f} s after kill -9", flush=True)  # fmt: skip
                a.stop()
        finally:
            redis.terminate()
            redis.wait(timeout=20)
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The printed tables."""
    t1, t2 = summary(results["throughput"]["1"]), summary(results["throughput"]["2"])
    ratio, rec = summary(results["ratio"]), summary(results["recovery_s"])
    rows = [
        ["1 replica: runs/s", t1["min"], t1["median"], ""],
        ["2 replicas: runs/s", t2["min"], t2["median"], ""],
        ["2 / 1 replicas (per round)", ratio["min"], ratio["median"], f">= {TARGET_RATIO}x"],
        ["recovery after kill -9, s", rec["min"], rec["median"], f"< {TARGET_RECOVERY_S:g} s"],
    ]
    head = (f"replicas: {args.runs} concurrent routing runs, {args.delay:g} s per model reply, "
            f"{args.jobs} jobs per replica, {args.rounds} rounds, {args.kills} kill trials")  # fmt: skip
    return f"{head}\n\n{table(['measure', 'min', 'median', 'target'], rows)}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved 1-vs-2 rounds")
    p.add_argument("--kills", type=int, default=2, help="kill -9 recovery trials")
    p.add_argument("--runs", type=int, default=40, help="concurrent runs per batch")
    p.add_argument("--delay", type=float, default=1.0, help="seconds per model reply")
    p.add_argument("--jobs", type=int, default=10, help="runs at once per replica")
    p.add_argument("--quick", action="store_true", help="2 rounds, 1 kill trial")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.kills = 2, 1
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    quiet_env()
    os.environ.pop("TIERFLOW_LEDGER_URL", None)
    args = parse(argv)
    results = main_run(args)
    print()
    print(report(results, args))
    write_json(args.json, {"bench": "replicas", "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
