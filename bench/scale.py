"""Triage at scale: checkpoint bytes, CPU, wall and peak RSS per ticket for N tickets.

Run: python bench/scale.py [--ns 10,100,1000] [--rounds 5] [--timeout 900] [--json out.json]

Each (round, N) runs in a fresh subprocess, so peak RSS (ru_maxrss) belongs to that N alone:
triage (tierflow.graphs.triage.build()) compiled with AsyncSqliteSaver on a temp file, the
openai profile with scripted tiers answering classify (nano), extract (mini) and draft
(flagship) instantly, and an unattended policy (human=False) so drafts are auto-approved.
Every third ticket is urgent and gets a draft. Printed per N: checkpoint bytes (db + wal
after the run), bytes/ticket, CPU ms/ticket, wall ms/ticket, peak RSS MB; ratios of the
largest N to ``--base`` (default 100) for bytes/ticket and CPU/ticket (target <= 1.5x) and
peak RSS at the largest N (target < 400 MB at N=1000). Runs past ``--timeout`` are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RETRY, USAGE, quiet_env, summary, table, thread, write_json

RATIO_TARGET = 1.5
RSS_TARGET_MB = 400


def tickets(n: int) -> list[dict[str, Any]]:
    """N synthetic tickets; every third one is urgent."""
    return [
        {
            "id": f"t-{i:05d}",
            "subject": "URGENT: charged twice" if i % 3 == 0 else "Question about my plan",
            "body": f"I was charged ${10 + i % 90}.99 for order ORD-{10000 + i} on the Pro plan.",
            "customer_email": f"user{i}@example.com",
        }
        for i in range(n)
    ]


def _classify(messages: list[Any]) -> Any:
    from tierflow.testing import tool_reply

    urgent = "URGENT" in _text(messages)
    label = {"category": "billing", "urgency": "high" if urgent else "low", "complex": False}
    return tool_reply("finish", label, usage=USAGE)


def _extract(messages: list[Any]) -> Any:
    from tierflow.testing import tool_reply

    text = _text(messages)
    fields = {
        "order_id": re.search(r"ORD-\d+", text).group(0),  # type: ignore[union-attr]
        "amount_usd": float(re.search(r"\$(\d+\.\d+)", text).group(1)),  # type: ignore[union-attr]
        "product": "Pro",
        "customer_email": re.search(r"user\d+@example\.com", text).group(0),  # type: ignore[union-attr]
    }
    return tool_reply("finish", fields, usage=USAGE)


def _draft(messages: list[Any]) -> Any:
    from tierflow.testing import tool_reply

    reply = {"subject": "Re: your ticket", "body": "We refund the double charge today."}
    return tool_reply("finish", reply, usage=USAGE)


def _text(messages: list[Any]) -> str:
    return "\n".join(str(m.content) for m in messages[1:])


async def child(n: int) -> dict[str, Any]:
    """One triage run of ``n`` tickets in this process; returns the measurements."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from tierflow.graphs.triage import build
    from tierflow.runtime import RunContext, TierPolicy
    from tierflow.testing import ScriptedChatModel

    # A callable script entry answers one request; there is one per request the tier can get.
    models = {
        "nano": ScriptedChatModel(script=[_classify] * n, label="nano"),
        "mini": ScriptedChatModel(script=[_extract] * n, label="mini"),
        "flagship": ScriptedChatModel(script=[_draft] * n, label="flagship"),
    }
    ctx = RunContext(
        profile="openai",
        models=models,
        retry=RETRY,
        policy=TierPolicy(name="unattended", human=False),
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        db = Path(tmp) / "triage.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(db)) as cp:
            graph = build().compile(checkpointer=cp)
            t0, c0 = time.perf_counter(), time.process_time()
            out = await graph.ainvoke({"tickets": tickets(n)}, thread(), context=ctx)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.startswith(db.name))
    statuses: dict[str, int] = {}
    for t in (out.get("tickets_out") or {}).values():
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    return {
        "n": n,
        "checkpoint_bytes": size,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_calls": sum(len(m.requests) for m in models.values()),
        "statuses": statuses,
    }


def run_child(n: int, timeout: float) -> dict[str, Any]:
    """Run one N in a fresh interpreter."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"timeout after {timeout:g} s"}
    if proc.returncode != 0:
        return {"n": n, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = time.perf_counter() - t0
    return res


def _per_ticket(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"]}
    n = ok[0]["n"]
    return {
        "runs": len(ok),
        "model_calls": ok[0]["model_calls"],
        "statuses": ok[0]["statuses"],
        "checkpoint_bytes": summary([r["checkpoint_bytes"] for r in ok]),
        "bytes_per_ticket": summary([r["checkpoint_bytes"] / n for r in ok]),
        "cpu_ms_per_ticket": summary([1000 * r["cpu_s"] / n for r in ok]),
        "wall_ms_per_ticket": summary([1000 * r["wall_s"] / n for r in ok]),
        "peak_rss_mb": summary([r["peak_rss_mb"] for r in ok]),
        "errors": [r["error"] for r in runs if "error" in r],
    }


def report(per_n: dict[int, Any], args: Any) -> str:
    """The printed tables."""
    rows = []
    for n, s in per_n.items():
        if "error" in s:
            rows.append([f"N={n}", s["error"], "", "", "", "", ""])
            continue
        rows.append([
            f"N={n}", s["model_calls"], s["checkpoint_bytes"]["median"],
            s["bytes_per_ticket"]["median"], s["cpu_ms_per_ticket"]["median"],
            s["wall_ms_per_ticket"]["median"], s["peak_rss_mb"]["median"],
        ])  # fmt: skip
    heads = ["N", "model calls", "ckpt bytes", "bytes/ticket", "CPU ms/ticket", "wall ms/ticket",
             "peak RSS MB"]  # fmt: skip
    main = table(heads, rows)
    ratios = _ratios(per_n, args.base)
    head = f"scale: triage on AsyncSqliteSaver, {args.rounds} round(s) per N (medians shown)"
    return f"{head}\n\n{main}\n\n{ratios}"


def _ratios(per_n: dict[int, Any], base: int) -> str:
    done = [n for n, s in per_n.items() if "error" not in s]
    if base not in done or max(done) == base:
        return f"(no ratio: needs N={base} and a larger N that finished)"
    top = max(done)
    rows = []
    for key, label in (("bytes_per_ticket", "bytes/ticket"), ("cpu_ms_per_ticket", "CPU/ticket")):
        ratio = per_n[top][key]["median"] / per_n[base][key]["median"]
        rows.append([f"{label} N={top} / N={base}", ratio, f"<= {RATIO_TARGET}x"])
    rss = per_n[top]["peak_rss_mb"]["median"]
    rows.append([f"peak RSS MB at N={top}", rss, f"< {RSS_TARGET_MB} (at N=1000)"])
    return table(["ratio", "value", "target"], rows)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ns", default="10,100,1000", help="comma-separated ticket counts")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per N")
    p.add_argument("--timeout", type=float, default=900, help="seconds per subprocess run")
    p.add_argument("--base", type=int, default=100, help="N the largest N is compared with")
    p.add_argument("--quick", action="store_true", help="N = 10, 100, 200; 5 rounds")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.ns = [10, 100, 200] if args.quick else [int(n) for n in args.ns.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    quiet_env()
    args = parse(argv)
    if args.child is not None:
        print(json.dumps(asyncio.run(child(args.child))))
        return 0
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.ns}
    given_up: set[int] = set()
    for r in range(args.rounds):
        for n in args.ns:
            if n in given_up:
                continue
            res = run_child(n, args.timeout)
            runs[n].append(res)
            if "error" in res:
                given_up.add(n)  # a timeout is not retried: it would only time out again
            shown = res.get("error") or f"{res['wall_s']:.2f}s wall, {res['peak_rss_mb']:.0f} MB"
            print(f"  round {r + 1}/{args.rounds} N={n}: {shown}", flush=True)
    per_n = {n: _per_ticket(runs[n]) for n in args.ns}
    print()
    print(report(per_n, args))
    write_json(args.json, {"bench": "scale", "args": vars(args), "results": per_n, "raw": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
