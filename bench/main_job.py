"""The main job on local models: right or wrong, reported status, time, calls and tokens.

Run: python bench/main_job.py [--set requests|click|httpx|attrs|rich|marshmallow|jinja2|werkzeug|flask|structlog[:dev|:test]]
     [--policy tiered,all-flagship,all-nano] [--only mj-01,mj-05] [--limit N] [--json out.json]
     python bench/main_job.py --set click:test --list   (print the questions; no servers)

Questions are about pinned third-party trees (:data:`tierflow.evals.trees.TREES`; each sdist is
downloaded once and checked against its sha256). ``--set`` picks one: ``requests`` (the default,
bench/main_job_questions.json, 14 questions about requests 2.32.3), ``click``
(bench/questions/click.json, questions about click 8.1.8 in seven kinds, split into ``dev``, to
tune on, and ``test``, never tuned on: ``click:dev``, ``click:test``; plain ``click`` runs
both), ``httpx`` (bench/questions/httpx.json, 28 questions about httpx 0.28.1 in the same
kinds, written before any run; held out until its first run, dev since) or ``attrs``
(bench/questions/attrs.json, 35 questions about attrs 25.4.0, all held out); ``rich``,
``marshmallow``, ``jinja2``, ``werkzeug`` and ``flask`` (bench/questions/<name>.json, each
written from its package's source alone before any run on it, split dev/test). Each question runs ``codebase_qa`` on the local profile, one at a time, unattended, with
the local servers started first (and left as they were found: servers this bench started are
stopped).

Per question it prints: right (every keyword group in the answer and a citation inside the
evidence lines), the status the run reported, wall seconds, model calls, prompt tokens, prompt
tokens served from the servers' cache (prompt tokens minus those llama.cpp evaluated), and
llama.cpp's own prompt-eval and generation seconds (from the server logs). The headline: wrong
answers reported ``answered`` (target 0), share right (target >= 75%), median wall time (target
<= 90 s), cache share, and where the tokens and dollars go per tier. With several policies (the default: tiered,
all-flagship, all-nano) each gets its table, then one line per policy side by side, with what
the run's tokens would have cost at the ``openai`` profile's prices and, beside all-flagship,
its cost and right answers relative to all-flagship's (target: tiered at <= 60% of the cost,
within 5 points). Run it alone on a quiet
machine; nothing fails here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import run_bench, table

QUESTIONS = Path(__file__).with_name("main_job_questions.json")
SETS: dict[str, Path] = {
    "requests": QUESTIONS,
    "click": Path(__file__).with_name("questions") / "click.json",
    "httpx": Path(__file__).with_name("questions") / "httpx.json",
    "attrs": Path(__file__).with_name("questions") / "attrs.json",
    "rich": Path(__file__).with_name("questions") / "rich.json",
    "marshmallow": Path(__file__).with_name("questions") / "marshmallow.json",
    "jinja2": Path(__file__).with_name("questions") / "jinja2.json",
    "werkzeug": Path(__file__).with_name("questions") / "werkzeug.json",
    "flask": Path(__file__).with_name("questions") / "flask.json",
    "structlog": Path(__file__).with_name("questions") / "structlog.json",
}
"""Question sets by ``--set`` name; each file's ``tree.name`` is a pinned tree of that package."""
SPLITS = ("dev", "test")
_TIMING = re.compile(r"(prompt eval|\beval) time\s*=\s*([\d.]+) ms\s*/\s*(\d+)")


def right(item: dict[str, Any], answer: dict[str, Any] | None) -> bool:
    """Every keyword group in the answer text and one citation inside the evidence lines."""
    if not answer:
        return False
    text = str(answer.get("answer", "")).lower()
    if not all(any(k.lower() in text for k in group) for group in item["keywords"]):
        return False
    for cite in answer.get("citations") or []:
        path = str(cite.get("path", "")).removeprefix("./")
        for ev in item["evidence"]:
            first, last = ev["lines"]
            if path == ev["path"] and first <= int(cite.get("line", 0)) <= last:
                return True
    return False


def _log_offsets(logs: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_size if p.exists() else 0 for p in logs}


def server_timings(before: dict[Path, int]) -> dict[str, float]:
    """llama.cpp's prompt-eval and generation figures logged since ``before``."""
    out = {"prompt_eval_s": 0.0, "prompt_evaluated": 0.0, "gen_s": 0.0, "generated": 0.0}
    for path, offset in before.items():
        if not path.exists():
            continue
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        for kind, ms, n in _TIMING.findall(text):
            if kind == "prompt eval":
                out["prompt_eval_s"] += float(ms) / 1000
                out["prompt_evaluated"] += int(n)
            else:
                out["gen_s"] += float(ms) / 1000
                out["generated"] += int(n)
    return out


def parse_set(value: str) -> tuple[str, str | None]:
    """``name`` or ``name:split`` -> (name, split or None); raises ValueError when unknown."""
    name, _, split = value.partition(":")
    if name not in SETS:
        raise ValueError(f"unknown question set {name!r}: one of {', '.join(SETS)}")
    if split and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    return name, split or None


def load_set(
    value: str, only: str | None = None, limit: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The set's file and its questions for ``--set value``, ``--only`` and ``--limit``.

    Raises:
        ValueError: an unknown set or split, or a split asked of a set that has none.
    """
    name, split = parse_set(value)
    spec = json.loads(SETS[name].read_text())
    items = spec["questions"]
    if split:
        if not any("split" in q for q in items):
            raise ValueError(f"question set {name!r} has no dev/test split")
        items = [q for q in items if q.get("split") == split]
    if only:
        wanted = set(only.split(","))
        items = [q for q in items if q["id"] in wanted]
    return spec, items[: limit or None]


def set_tree(spec: dict[str, Any]) -> Any:
    """The pinned tree (:class:`tierflow.evals.trees.PinnedTree`) a set's file names."""
    from tierflow.evals.trees import TREES

    for tree in TREES.values():
        if tree.name == spec["tree"]["name"]:
            return tree
    raise ValueError(f"no pinned tree named {spec['tree']['name']!r} in tierflow.evals.trees")


async def ask(
    item: dict[str, Any], root: Path, args: Any, logs: list[Path], policy_name: str
) -> dict[str, Any]:
    """One question, run as ``tierflow run codebase_qa ... --unattended`` would."""
    from tierflow.config import load_config
    from tierflow.report import reference_config
    from tierflow.runner import Runner
    from tierflow.runtime import POLICIES, RunContext
    from tierflow.usage import reprice, spent_usd

    policy = dataclasses.replace(POLICIES[policy_name], human=False, on_budget="stop")
    context = RunContext(profile=args.profile, policy=policy, calibration=args.calibration)
    runner = Runner(args.data_dir, context=context)
    inputs = {"request": item["question"], "env": {"root": str(root)}, "budget_usd": 1.0}
    offsets, t0 = _log_offsets(logs), time.perf_counter()
    try:
        result = await runner.run("codebase_qa", inputs)
        values, error = result.values, None
    except Exception as exc:  # noqa: BLE001 - a crashed question is a row, not the end
        values, error = {}, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    usage = values.get("usage") or []
    timings = server_timings(offsets)
    prompt = sum(r.get("input_tokens", 0) for r in usage)
    reported_cached = sum(r.get("cached_tokens", 0) for r in usage)
    cached = max(reported_cached, prompt - int(timings["prompt_evaluated"])) if usage else 0
    answer = values.get("answer")
    reference = reference_config(load_config(args.profile, require_keys=False))
    repriced = reprice(usage, reference) if reference else usage
    priced = spent_usd(repriced)
    return {
        "id": item["id"],
        "question": item["question"],
        "right": right(item, answer),
        "status": values.get("status") or ("crashed" if error else "?"),
        "wall_s": round(wall, 1),
        "calls": len(usage),
        "prompt_tokens": prompt,
        "cached_tokens": max(0, cached),
        "priced_usd": round(priced, 6),
        "tiers": by_tier(repriced),
        "nodes": by_node(repriced),
        **{k: round(v, 1) for k, v in timings.items()},
        "answer": answer,
        "problems": values.get("answer_problems") or [],
        "error": error,
        "call_errors": sorted({str(r["error"])[:200] for r in usage if r.get("error")}),
        "answers_checked": answers_checked(values.get("events") or []),
        "escalations": escalations(values.get("events") or []),
    }


def answers_checked(events: list[Any]) -> list[dict[str, Any]]:
    """Each answer the answer check judged (drafts and repairs): tier, verdict, answer."""
    out = []
    for e in events:
        if e.get("kind") == "verified" and e.get("check") == "answer":
            keep = ("tier", "ok", "reason", "answer", "written")
            out.append({k: e[k] for k in keep if e.get(k) is not None})
    return out


def escalations(events: list[Any]) -> list[dict[str, Any]]:
    """Each subagent task's climb: subagent, from, to, reason and the check's words (cut)."""
    keep = ("subagent", "task_id", "from", "to", "reason")
    return [
        {**{k: e.get(k) for k in keep}, "detail": str(e.get("detail") or "")[:300]}
        for e in events
        if e.get("kind") == "escalation"
    ]


def by_tier(usage: list[Any]) -> dict[str, dict[str, float]]:
    """Calls, input and output tokens and dollars (at the prices ``usage`` carries) per tier."""
    out: dict[str, dict[str, float]] = {}
    for r in usage:
        rec = r if isinstance(r, dict) else r.model_dump()
        t = out.setdefault(rec["tier"], {"calls": 0, "input": 0, "output": 0, "usd": 0.0})
        t["calls"] += 1
        t["input"] += rec.get("input_tokens", 0)
        t["output"] += rec.get("output_tokens", 0)
        t["usd"] = round(t["usd"] + rec.get("cost_usd", 0.0), 6)
    return out


def by_node(usage: list[Any]) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`by_tier` for each node (supervisor, answer, search, extract): where tokens go."""
    nodes: dict[str, list[Any]] = {}
    for r in usage:
        rec = r if isinstance(r, dict) else r.model_dump()
        nodes.setdefault(rec.get("node") or "?", []).append(rec)
    return {node: by_tier(records) for node, records in sorted(nodes.items())}


def tier_totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """:func:`by_tier` summed over questions."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        for tier, t in (row.get("tiers") or {}).items():
            acc = out.setdefault(tier, {"calls": 0, "input": 0, "output": 0, "usd": 0.0})
            for key, value in t.items():
                acc[key] = round(acc[key] + value, 6)
    return out


def headline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The targets' figures."""
    prompt = sum(r["prompt_tokens"] for r in rows)
    return {
        "questions": len(rows),
        "right": sum(r["right"] for r in rows),
        "wrong_reported_answered": sum(not r["right"] and r["status"] == "answered" for r in rows),
        "median_wall_s": statistics.median(r["wall_s"] for r in rows) if rows else 0.0,
        "calls": sum(r["calls"] for r in rows),
        "prompt_tokens": prompt,
        "cached_share": round(sum(r["cached_tokens"] for r in rows) / prompt, 3) if prompt else 0.0,
        "priced_usd": round(sum(r.get("priced_usd", 0.0) for r in rows), 6),
        "tiers": tier_totals(rows),
        "nodes": {
            node: tier_totals([{"tiers": r.get("nodes", {}).get(node, {})} for r in rows])
            for node in sorted({n for r in rows for n in r.get("nodes", {})})
        },
    }


async def main_async(args: Any) -> dict[str, Any]:
    """Install the tree, start the servers, ask every question in turn, stop what we started."""
    from tierflow.calibration import calibration_for
    from tierflow.config import load_config
    from tierflow.evals.trees import install
    from tierflow.local import ensure_running
    from tierflow.local.servers import LocalServers

    spec, items = load_set(args.set, args.only, args.limit)
    tree = set_tree(spec)
    root = install(tree)
    cfg = load_config(args.profile)
    servers = LocalServers(cfg)
    was_running = set(servers.records())
    print(ensure_running(cfg) or "no local tiers in this profile", flush=True)
    logs = [Path(r.log) for r in servers.records().values()]
    runs = []
    try:
        for policy in args.policy.split(","):
            rows = []
            for n, item in enumerate(items, 1):
                row = await ask(item, root, args, logs, policy)
                rows.append(row)
                print(f"  {policy} [{n}/{len(items)}] {row['id']} "
                      f"{'right' if row['right'] else 'wrong'} {row['status']} {row['wall_s']} s, "
                      f"{row['calls']} calls: {json.dumps(row['answer'])[:160]}",
                      flush=True)  # fmt: skip
            runs.append({"policy": policy, "rows": rows, "headline": headline(rows)})
    finally:
        started = [t for t in servers.records() if t not in was_running]
        if started:
            servers.down(started)
    name, split = parse_set(args.set)
    cal = calibration_for("codebase_qa", args.calibration)
    return {
        "calibration": cal.label() if cal is not None else None,
        "profile": args.profile,
        "set": name,
        "split": split or "all",
        "tree": f"{tree.package} {tree.version}",
        "runs": runs,
    }


def report(results: dict[str, Any], args: Any) -> str:
    """Per policy: the per-question table and the headline; then the policies side by side."""
    cols = ["id", "right", "status", "wall s", "calls", "prompt tok", "cached tok", "prompt-eval s",
            "gen s"]  # fmt: skip
    lines: list[str] = []
    for run in results["runs"]:
        rows = [
            [r["id"], "yes" if r["right"] else "no", r["status"], r["wall_s"], r["calls"],
             r["prompt_tokens"], r["cached_tokens"], r["prompt_eval_s"], r["gen_s"]]
            for r in run["rows"]
        ]  # fmt: skip
        h = run["headline"]
        share = h["right"] / h["questions"] if h["questions"] else 0.0
        lines += [
            f"main job: codebase_qa on {results['profile']}, policy {run['policy']}, "
            f"set {results.get('set', 'requests')}, split {results.get('split', 'all')}: "
            f"{h['questions']} questions about {results.get('tree', 'requests 2.32.3')}",
            "",
            table(cols, rows),
            "",
            f"wrong answers reported answered: {h['wrong_reported_answered']} (target 0)",
            f"right with a correct citation: {h['right']}/{h['questions']} = {share:.0%} "
            "(target >= 75%)",
            f"median wall time per question: {h['median_wall_s']:.0f} s (target <= 90 s)",
            f"prompt tokens served from cache: {h['cached_share']:.0%} of {h['prompt_tokens']}; "
            f"{h['calls']} model calls in all",
            f"cost at openai prices: ${h['priced_usd']:.4f}",
            "where the tokens go, per tier (calls, input, output, $ at openai prices): "
            + tiers_line(h.get("tiers") or {}),
            "per node: "
            + " | ".join(f"{node}: {tiers_line(t)}" for node, t in (h.get("nodes") or {}).items()),
            "",
        ]
    flag = next((r["headline"] for r in results["runs"] if r["policy"] == "all-flagship"), None)
    side = [
        [run["policy"], f"{h['right']}/{h['questions']}", h["wrong_reported_answered"],
         f"{h['median_wall_s']:.0f}", h["calls"], f"{h['cached_share']:.0%}",
         f"{h['priced_usd']:.4f}",
         f"{h['priced_usd'] / flag['priced_usd']:.0%}" if flag and flag["priced_usd"] else "-",
         f"{(h['right'] - flag['right']) / h['questions'] * 100:+.0f}" if flag and h["questions"]
         else "-"]
        for run in results["runs"]
        for h in [run["headline"]]
    ]  # fmt: skip
    lines += [
        f"policies side by side (set {results.get('set', 'requests')}, "
        f"split {results.get('split', 'all')})",
        table(
            [
                "policy",
                "right",
                "wrong answered",
                "median s",
                "calls",
                "cached",
                "at openai $",
                "cost vs all-flagship",
                "right vs all-flagship (points)",
            ],
            side,
        ),  # fmt: skip
    ]
    return "\n".join(lines)


def tiers_line(tiers: dict[str, dict[str, float]]) -> str:
    """``flagship 12 calls, 30,000 in, 900 out, $0.09 (80%); mini ...`` (share of dollars)."""
    total = sum(t["usd"] for t in tiers.values()) or 1.0
    return (
        "; ".join(
            f"{tier} {t['calls']:.0f} calls, {t['input']:,.0f} in, {t['output']:,.0f} out, "
            f"${t['usd']:.4f} ({t['usd'] / total:.0%})"
            for tier, t in sorted(tiers.items(), key=lambda kv: -kv[1]["usd"])
        )
        or "no calls"
    )


def listing(value: str, spec: dict[str, Any], items: list[dict[str, Any]]) -> str:
    """``--list``: the chosen questions with their kind, split and evidence."""
    name, split = parse_set(value)
    lines = [f"set {name}, split {split or 'all'}: {len(items)} questions about "
             f"{spec['tree']['name']}", ""]  # fmt: skip
    for q in items:
        where = ", ".join(f"{e['path']}:{e['lines'][0]}-{e['lines'][1]}" for e in q["evidence"])
        lines.append(f"{q['id']}  {q.get('kind', '-'):<10}  {q.get('split', '-'):<4}  "
                     f"{q['question']}  [{where}]")  # fmt: skip
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--policy",
        default="tiered,all-flagship,all-nano",
        help="comma-separated: tiered, all-flagship, all-nano, cascade",
    )
    p.add_argument(
        "--set",
        default="requests",
        help="question set: requests (default), or click, httpx, attrs, rich, marshmallow, jinja2, "
        "werkzeug, flask, structlog, each with :dev or :test for one split",
    )
    p.add_argument(
        "--list", action="store_true", help="print the chosen questions and exit (no servers)"
    )
    p.add_argument("--profile", default="local")
    p.add_argument("--only", help="comma-separated question ids")
    p.add_argument("--limit", type=int, default=0, help="first N questions only")
    p.add_argument("--data-dir", default=None, help="checkpoints (default: a temporary dir)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--calibration",
        metavar="PATH",
        help="the codebase_qa calibration to run with (`tierflow calibrate codebase_qa`); "
        "default: .tierflow/calibration/codebase_qa.json when it exists",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse(argv)
    try:
        spec, items = load_set(args.set, args.only, args.limit)
    except ValueError as exc:
        print(f"main_job: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print(listing(args.set, spec, items))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as tmp:
        args.data_dir = args.data_dir or tmp
        return run_bench("main_job", args, main_async, report)


if __name__ == "__main__":
    sys.exit(main())
