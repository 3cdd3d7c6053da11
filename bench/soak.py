"""Soak: both graphs many times behind injected faults, and runs killed with kill -9.

Run: python bench/soak.py [--runs 25] [--rate 0.2] [--kills 12] [--seed 1] [--json out.json]
     [--ledger sqlite|memory] [--pause-while LOCKFILE]

Every model call goes over HTTP (langchain-openai's client, the engine's retries, the
circuit breaker, the SQLite checkpointer) to :class:`tierflow.faults.StandIn`, a loopback
OpenAI-compatible server whose answers come from the eval suites' oracle models, with
transport faults (500, 429, slow past the timeout, a 200 that is not JSON, a dropped
connection) and malformed tool-call JSON injected at ``--rate``.

1. **Fault runs**: codebase_qa and triage eval items, ``--runs`` each, at 0% and at
   ``--rate``. Each run is answered (codebase_qa ``answered``, triage ``done``), another final
   status, waiting at an interrupt with its state intact, failed, lost (no state afterwards)
   or crashed (an exception escaped), and overspent or not; "same" counts runs whose status
   and answer equal the fault-free run of the same item. Extra cost and wall time are the
   faulted runs' totals minus the fault-free ones'.
2. **kill -9 trials**: ``tierflow run`` in a child process, killed at a random moment, then
   ``tierflow resume``; a trial passes when the resumed run ends like an uninterrupted run of
   the same item and its state records no paid call twice (successful calls equal the
   uninterrupted run's). Each request the server answered in a trial is a record in the
   resumed state or, its process killed before the checkpoint, a charge in the run's ledger
   file (``--ledger sqlite``, the default: the Runner's own, beside the checkpoints), settled
   as reported or its hold taken as ``estimated`` (with a record in the resumed state); one
   that is neither is lost (billed by the provider, counted nowhere). Holds still open in the
   file after the resume are unsettled at run end. ``--ledger memory``
   (``TIERFLOW_LEDGER_URL=memory``) shows the process's own.
3. **Tools**: every tool call's time against its timeout, and hostile calls made directly
   (a catastrophic regex, a 20 MB line, grep over 20,000 files) against the subagent's
   tool timeout.

The faults' extra cost is split by the ``cause`` of each failed attempt's record (only
"possibly processed", "cancelled after send" and "process died after send" are charged) and
what the answered requests cost more. ``--pause-while
PATH`` waits before each run and trial while PATH exists. The targets (issues 8 and 26) are
printed with the figures; nothing fails here.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from _common import run_bench, table, write_json

PROFILE_FIELDS = {"timeout_s": 1.0, "max_retries": 6}  # every stand-in tier
HOLD_PREFIX = "hold:"  # a hold taken as spend: its charge and record (tierflow._holds)
ANSWERED = {"codebase_qa": "answered", "triage": "done"}
BUDGET_USD = 0.5


def write_profile(work: Path, url: str) -> Path:
    """tierflow.toml with a ``soak`` profile whose three tiers are the stand-in."""
    from tierflow.faults import profile_toml

    toml = work / "tierflow.toml"
    toml.write_text(profile_toml("soak", url, **PROFILE_FIELDS))
    return toml


def by_cause(usage: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Failed attempts by their record's ``cause``: how many, how many estimated, what they cost."""
    out: dict[str, dict[str, Any]] = {}
    for rec in usage:
        if rec.get("error") is None:
            continue
        row = out.setdefault(str(rec.get("cause")), {"attempts": 0, "estimated": 0, "usd": 0.0})
        row["attempts"] += 1
        row["estimated"] += rec.get("billing") == "estimated"
        row["usd"] += float(rec.get("cost_usd") or 0.0)
    return out


def reached(usage: list[dict[str, Any]]) -> int:
    """Records of requests that reached the server (not from the cache, not never sent)."""
    from tierflow.protocol import FailureCause

    return sum(
        1
        for r in usage
        if not r.get("cached_response") and r.get("cause") != FailureCause.NEVER_SENT
    )


def summary(values: dict[str, Any]) -> dict[str, Any]:
    """What a run ended with, for comparing runs."""
    from tierflow.usage import spent_usd

    usage = values.get("usage") or []
    ok = [r for r in usage if r.get("error") is None]
    return {
        "status": values.get("status"),
        "answer": json.dumps(values.get("answer") or values.get("tickets_out"), sort_keys=True,
                             default=str),
        "ok_calls": len(ok),
        "ok_usd": spent_usd(ok),
        "failed_attempts": by_cause(usage),
        "reached_records": reached(usage),
        "duplicate_records": len(usage) - len({r["id"] for r in usage}),
        "spent_usd": spent_usd(usage),
        "budget_usd": values.get("budget_usd") or BUDGET_USD,
    }  # fmt: skip


def pause_while(args: Any) -> float:
    """Wait while ``--pause-while`` names a file that exists (another job needs the CPUs)."""
    lock = Path(args.pause_while) if args.pause_while else None
    t0 = time.perf_counter()
    if lock is not None and lock.exists():
        print(f"  paused: {lock} exists", flush=True)
        while lock.exists():
            time.sleep(20)
    return time.perf_counter() - t0


async def fault_phase(
    suite: str, items: list[dict[str, Any]], rate: float, args: Any, work: Path
) -> dict[str, Any]:
    """Run ``items`` of ``suite`` at ``rate``; per-run outcomes and totals."""
    from langgraph.types import RetryPolicy

    from tierflow.evals import SUITES
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import ALL_FAULTS, StandIn, standin_context
    from tierflow.protocol import StreamEvent
    from tierflow.runner import Runner

    spec = SUITES[suite]
    tools: list[dict[str, Any]] = []
    runs = []
    with StandIn(
        rate=rate, kinds=ALL_FAULTS, seed=args.seed, slow_s=1.3, responder=oracle_responder(suite)
    ) as server:
        retry = RetryPolicy(initial_interval=0.05, backoff_factor=1.5, jitter=False, max_attempts=7)
        ctx = standin_context(work, "soak", server.base_url, retry, **PROFILE_FIELDS)
        runner = Runner(work / f"data-{suite}-{rate}", context=ctx)
        for n, item in enumerate(items):
            inputs = {**spec.make_input(item), "budget_usd": BUDGET_USD}
            thread = f"{suite}-{rate}-{n}"
            pause_while(args)
            t0 = time.perf_counter()
            try:
                result = await runner.run(
                    spec.graph, inputs, thread_id=thread,
                    on_event=lambda e: tools.append(e) if e.get("event") == StreamEvent.TOOL_CALL else None,
                )  # fmt: skip
                error = None
            except Exception as exc:  # noqa: BLE001 - a crash is a figure, not the end
                result, error = None, f"{type(exc).__name__}: {exc}"
            wall = time.perf_counter() - t0
            try:
                after = await runner.state(thread)
                state = summary(after.values) if after.values else None
                waiting = bool(after.interrupts)
            except Exception:  # noqa: BLE001
                state, waiting = None, False
            runs.append({"item": item["id"], "wall_s": wall, "error": error, "state": state,
                         "waiting": waiting, "interrupts": bool(result and result.interrupts)})  # fmt: skip
        faults = dict(server.faults)
        requests = server.requests
    return {"suite": suite, "rate": rate, "runs": runs, "faults": faults, "requests": requests,
            "tools": tools}  # fmt: skip


def classify(suite: str, run: dict[str, Any]) -> str:
    """answered, ended (another final status), waiting, failed, lost or crashed."""
    if run["error"] is not None:
        return "crashed"
    if run["state"] is None:
        return "lost"
    if run["waiting"]:
        return "waiting"
    status = run["state"]["status"]
    if status == ANSWERED[suite]:
        return "answered"
    return "failed" if status == "failed" else "ended"


def phase_row(phase: dict[str, Any], clean: dict[str, Any] | None) -> dict[str, Any]:
    """One line of the fault table."""
    suite, runs = phase["suite"], phase["runs"]
    kinds = [classify(suite, r) for r in runs]
    same = None
    if clean is not None:
        base = {r["item"]: r["state"] for r in clean["runs"]}
        same = sum(
            1 for r in runs
            if r["state"] and base.get(r["item"])
            and (r["state"]["status"], r["state"]["answer"])
            == (base[r["item"]]["status"], base[r["item"]]["answer"])
        )  # fmt: skip
    overspent = sum(1 for r in runs if r["state"] and r["state"]["spent_usd"] >
                    r["state"]["budget_usd"] + 1e-9)  # fmt: skip
    return {
        "suite": suite,
        "rate": phase["rate"],
        "runs": len(runs),
        **{
            k: kinds.count(k) for k in ("answered", "ended", "waiting", "failed", "lost", "crashed")
        },
        "overspent": overspent,
        "same_as_clean": same,
        "cost_usd": sum(r["state"]["spent_usd"] for r in runs if r["state"]),
        "wall_s": sum(r["wall_s"] for r in runs),
        "faults": sum(phase["faults"].values()),
        "fault_kinds": dict(phase["faults"]),
        "requests": phase["requests"],
        "records": sum(r["state"]["reached_records"] for r in runs if r["state"]),
        "ok_usd": sum(r["state"]["ok_usd"] for r in runs if r["state"]),
        "failed_attempts": merged_causes(r["state"]["failed_attempts"] for r in runs if r["state"]),
    }


def merged_causes(rows: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The sum of several :func:`by_cause` tables."""
    out: dict[str, dict[str, Any]] = {}
    for table_ in rows:
        for cause, row in table_.items():
            into = out.setdefault(cause, {"attempts": 0, "estimated": 0, "usd": 0.0})
            for key in into:
                into[key] += row[key]
    return out


def _cli(*argv: str) -> list[str]:
    return [str(Path(sys.executable).with_name("tierflow")), *argv]


def _child_env(persist: bool) -> dict[str, str]:
    """The CLI's environment: the Runner's ledger beside the checkpoints, or (not ``persist``)
    the process's own."""
    from tierflow.budget import IN_PROCESS

    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERFLOW_")}
    if not persist:
        env["TIERFLOW_LEDGER_URL"] = IN_PROCESS
    return {**env, "STAND_IN_KEY": "sk-stand-in", "LANGSMITH_TRACING": "false"}


def _run_cli(work: Path, data: Path, thread: str, input_file: Path, graph: str) -> list[str]:
    return _cli("run", graph, str(input_file), "--thread", thread, "--data-dir", str(data),
                "--profile", "soak", "--budget-usd", str(BUDGET_USD), "--unattended")  # fmt: skip


async def final_values(data: Path, thread: str) -> dict[str, Any] | None:
    """The thread's state values as checkpointed, or None when nothing can be read."""
    from tierflow.runner import Runner

    try:
        result = await Runner(data).state(thread)
    except Exception:  # noqa: BLE001
        return None
    return dict(result.values) if result.values else None


def ledger_account(path: Path, ids: set[str]) -> dict[str, Any] | None:
    """A kill trial's ledger file after the resume: its charges by kind, its holds left.

    ``estimated``: holds a dead process left, taken as spend at their reservation (and
    ``estimated_recorded`` of them with their record in the resumed state, as ``tierflow show``
    lists them); ``settled_unrecorded``: requests settled (paid as reported) whose record
    missed the checkpoint; ``records_uncharged``: records in state the file never charged;
    ``holds_left``: holds still open after the resume ended, unsettled at run end.
    """
    import sqlite3

    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        charges = db.execute("SELECT record_id, usd FROM charges").fetchall()
        spent = sum(r[0] for r in db.execute("SELECT spent_usd FROM ledgers"))
        holds = db.execute("SELECT COUNT(*), COALESCE(SUM(usd), 0) FROM holds").fetchone()
    estimated = [(key, usd) for key, usd in charges if key.startswith(HOLD_PREFIX)]
    unrecorded = [usd for key, usd in charges if not key.startswith(HOLD_PREFIX) and key not in ids]
    return {
        "estimated": len(estimated),
        "estimated_usd": sum(usd for _, usd in estimated),
        "estimated_recorded": sum(key in ids for key, _ in estimated),
        "settled_unrecorded": len(unrecorded),
        "settled_unrecorded_usd": sum(unrecorded),
        "records_uncharged": len(ids - {key for key, _ in charges}),
        "holds_left": holds[0],
        "holds_left_usd": holds[1],
        "spent_usd": spent,
        "charges_usd": sum(usd for _, usd in charges),
    }


def kill_account(
    values: dict[str, Any] | None, ledger: Path | None, answered: int
) -> dict[str, Any]:
    """Where the requests the server answered in one kill trial went (run and resume together).

    Each is a record in the resumed state, or (killed before its checkpoint) a charge in the
    ledger file: settled as reported, or its hold taken as ``estimated``. What is neither is
    lost: billed by the provider, counted nowhere.
    """
    usage = (values or {}).get("usage") or []
    book = ledger_account(ledger, {r["id"] for r in usage}) if ledger else None
    # A taken hold's record stands for a request the ledger charged, counted there.
    unrecorded = answered - reached([r for r in usage if not r["id"].startswith(HOLD_PREFIX)])
    covered = (book["estimated"] + book["settled_unrecorded"]) if book else 0
    return {
        "answered": answered,
        "unrecorded": unrecorded,
        "lost": max(0, unrecorded - covered),
        "estimated_unanswered": max(0, covered - unrecorded),
        "ledger": book,
    }


def _wait_registered(data: Path, thread: str, child: subprocess.Popen[bytes]) -> float:
    """Poll the data dir until the child has registered ``thread``; the moment it did."""
    import sqlite3

    db = data / "checkpoints.sqlite"
    while child.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    sql = "SELECT 1 FROM tierflow_threads WHERE thread_id = ?"
                    if conn.execute(sql, (thread,)).fetchone():
                        return time.perf_counter()
            except sqlite3.Error:
                pass  # the table is not created yet
        time.sleep(0.01)
    return time.perf_counter()


def kill_trials(
    suite: str, items: list[dict[str, Any]], count: int, args: Any, work: Path
) -> list[dict[str, Any]]:
    """Uninterrupted reference runs, then ``count`` runs killed at random moments and resumed."""
    from tierflow.evals import SUITES
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import StandIn

    rng = random.Random(args.seed)
    from tierflow.runner import LEDGER_FILE

    spec = SUITES[suite]
    trials = []
    persist = args.ledger == "sqlite"
    with StandIn(responder=oracle_responder(suite)) as server:
        write_profile(work, server.base_url)
        refs: dict[str, tuple[dict[str, Any] | None, float, int]] = {}
        for item in items:
            input_file = work / f"{item['id']}.json"
            input_file.write_text(json.dumps(spec.make_input(item)))
            data, before = work / f"ref-{item['id']}", server.requests
            cmd = _run_cli(work, data, "ref", input_file, spec.graph)
            pause_while(args)
            env = _child_env(persist)
            child = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
            registered = _wait_registered(data, "ref", child)
            child.wait(timeout=600)
            wall = time.perf_counter() - registered
            values = asyncio.run(final_values(data, "ref"))
            refs[item["id"]] = (
                summary(values) if values else None,
                wall,
                server.requests - before,
            )
        for n in range(count):
            item = items[n % len(items)]
            ref, wall, ref_requests = refs[item["id"]]
            data, thread = work / f"kill-{suite}-{n}", f"kill-{n}"
            at = rng.uniform(0.0, 1.0) * wall  # after the run is registered, before it ends
            ledger = data / LEDGER_FILE if persist else None
            pause_while(args)
            before = server.requests
            child = subprocess.Popen(
                _run_cli(work, data, thread, work / f"{item['id']}.json", spec.graph),
                cwd=work, env=_child_env(persist), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _wait_registered(data, thread, child)
            time.sleep(at)
            killed = child.poll() is None
            if killed:
                os.kill(child.pid, signal.SIGKILL)
            child.wait()
            resumed = subprocess.run(
                _cli("resume", thread, "--data-dir", str(data)),
                cwd=work, env=_child_env(persist), capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            values = asyncio.run(final_values(data, thread))
            state = summary(values) if values else None
            ok = bool(
                state and ref and state["status"] == ref["status"]
                and state["answer"] == ref["answer"]
            )  # fmt: skip
            trials.append({
                "graph": spec.graph, "item": item["id"], "kill_at_s": round(at, 2), "killed": killed,
                "resume_exit": resumed.returncode,
                "resume_output": (resumed.stdout + resumed.stderr)[-300:],
                "resumable": ok,
                "recorded_repeats": (state["ok_calls"] - ref["ok_calls"]) if state and ref else None,
                "duplicate_records": state["duplicate_records"] if state else None,
                "server_repeats": server.requests - before - ref_requests,
                "overspent": bool(state and state["spent_usd"] > state["budget_usd"] + 1e-9),
                **kill_account(values, ledger, server.requests - before),
            })  # fmt: skip
    return trials


def hostile_tools(work: Path) -> list[dict[str, Any]]:
    """Tool calls built to hang or exhaust memory, timed directly (no wait_for around them)."""
    from tierflow.nodes.subagent import Subagent
    from tierflow.tools.fs import fs_tools

    tree = work / "hostile"
    (tree / "many").mkdir(parents=True)
    (tree / "aaa.txt").write_text("a" * 40 + "\n")
    (tree / "long.txt").write_text("x" * (20 << 20))
    for i in range(20_000):
        (tree / "many" / f"f{i}.py").write_text(f"value_{i} = {i}\n")
    by_name = {t.name: t for t in fs_tools(tree)}
    timeout = next(f.default for f in dataclasses.fields(Subagent) if f.name == "tool_timeout_s")
    calls = [
        ("grep", {"pattern": "(a+)+b", "path": "aaa.txt"}, "catastrophic regex"),
        ("read_file", {"path": "long.txt"}, "one 20 MB line"),
        ("grep", {"pattern": "value_19999 ", "path": "many"}, "grep over 20,000 files"),
    ]
    out = []
    for name, call_args, what in calls:
        t0 = time.perf_counter()
        text = str(by_name[name].invoke(call_args))
        out.append({"what": what, "tool": name, "elapsed_s": time.perf_counter() - t0,
                    "timeout_s": timeout, "reply": text[:120]})  # fmt: skip
    return out


async def measure(args: Any) -> dict[str, Any]:
    """All three parts, in a temporary working directory."""
    from tierflow.evals._suites import load_items

    with tempfile.TemporaryDirectory(prefix="tierflow-soak-") as tmp:
        work = Path(tmp)
        os.environ["STAND_IN_KEY"] = "sk-stand-in"
        phases = []
        for suite in ("codebase_qa", "triage"):
            pool = load_items(suite)
            items = [pool[i % len(pool)] for i in range(args.runs)]
            for rate in (0.0, args.rate):
                phase = await fault_phase(suite, items, rate, args, work)
                phases.append(phase)
                print(f"  {suite} at {rate:.0%}: {len(phase['runs'])} runs, "
                      f"{sum(phase['faults'].values())} faults", flush=True)  # fmt: skip
        kills: dict[str, list[Any]] = {"trials": []}
        for suite, count in (("codebase_qa", args.kills - args.kills // 2),
                             ("triage", args.kills // 2)):  # fmt: skip
            kills["trials"] += await asyncio.to_thread(
                kill_trials, suite, load_items(suite)[:4], count, args, work
            )
        print(f"  kill -9: {len(kills['trials'])} trials", flush=True)
        hostile = hostile_tools(work)
    return {"phases": phases, "kills": kills, "hostile": hostile}


CAUSES = ("possibly processed", "cancelled after send", "process died after send",
          "error status", "never sent", "other")  # fmt: skip


def _cause_deltas(hit: dict[str, Any], base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The faulted phase's failed attempts by cause, less the fault-free phase's."""
    out = {}
    for cause in dict.fromkeys([*CAUSES, *hit["failed_attempts"], *base["failed_attempts"]]):
        a = hit["failed_attempts"].get(cause, {"attempts": 0, "estimated": 0, "usd": 0.0})
        b = base["failed_attempts"].get(cause, {"attempts": 0, "estimated": 0, "usd": 0.0})
        out[cause] = {k: a[k] - b[k] for k in a}
    return out


def cost_split(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per graph and in all: the faults' extra cost, by the cause of each failed attempt.

    What the failed attempts cost (estimated, at their reservation) beside what the answered
    requests cost more (bad tool-call JSON repaired, escalations): together the extra cost.
    """
    out: dict[str, Any] = {}
    for hit in (r for r in rows if r["rate"]):
        base = next(r for r in rows if r["suite"] == hit["suite"] and not r["rate"])
        out[hit["suite"]] = {
            "runs": hit["runs"],
            "extra_usd": hit["cost_usd"] - base["cost_usd"],
            "extra_wall_s": hit["wall_s"] - base["wall_s"],
            "answered_usd": hit["ok_usd"] - base["ok_usd"],
            "causes": _cause_deltas(hit, base),
            "fault_kinds": hit["fault_kinds"],
            "requests": hit["requests"],
            "unrecorded_requests": hit["requests"] - hit["records"],
        }
    graphs = list(out.values())
    out["all"] = {
        "runs": sum(g["runs"] for g in graphs),
        "extra_usd": sum(g["extra_usd"] for g in graphs),
        "answered_usd": sum(g["answered_usd"] for g in graphs),
        "causes": merged_causes(g["causes"] for g in graphs),
        "unrecorded_requests": sum(g["unrecorded_requests"] for g in graphs),
    }
    return out


def _cost_lines(split: dict[str, Any]) -> list[str]:
    lines = []
    for name, g in split.items():
        head = f"{name}: faults cost {g['extra_usd']:+.4f} $ over {g['runs']} runs"
        if "extra_wall_s" in g:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(g["fault_kinds"].items()))
            head += f" and {g['extra_wall_s']:+.1f} s; faults injected: {kinds}"
        causes = "; ".join(
            f"{c} {row['attempts']} ({row['estimated']} estimated) {row['usd']:+.4f} $"
            for c, row in g["causes"].items()
        )
        lines += [
            head,
            f"  failed attempts by cause: {causes}",
            f"  answered requests (repairs, escalations): {g['answered_usd']:+.4f} $; requests "
            f"the server got that no record holds: {g['unrecorded_requests']}",
        ]
    return lines


def kill_totals(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The kill trials' accounting, summed (see :func:`kill_account`)."""
    books = [t["ledger"] for t in trials if t.get("ledger")]
    return {
        "answered": sum(t["answered"] for t in trials),
        "unrecorded": sum(max(0, t["unrecorded"]) for t in trials),
        "estimated": sum(b["estimated"] for b in books),
        "estimated_usd": sum(b["estimated_usd"] for b in books),
        "estimated_recorded": sum(b["estimated_recorded"] for b in books),
        "settled_unrecorded": sum(b["settled_unrecorded"] for b in books),
        "lost": sum(t["lost"] for t in trials),
        "trials_losing": sum(t["lost"] > 0 for t in trials),
        "estimated_unanswered": sum(t["estimated_unanswered"] for t in trials),
        "ledgers": len(books),
        "ledgers_consistent": sum(abs(b["spent_usd"] - b["charges_usd"]) < 1e-9 for b in books),
        "holds_left": sum(b["holds_left"] for b in books),
        "records_uncharged": sum(b["records_uncharged"] for b in books),
        "ledger_overspent": sum(b["spent_usd"] > BUDGET_USD + 1e-9 for b in books),
        "repeats": sum(max(0, t["recorded_repeats"] or 0) for t in trials),
        "duplicates": sum(t["duplicate_records"] or 0 for t in trials),
    }


def _kill_lines(trials: list[dict[str, Any]], k: dict[str, Any], ledger: str) -> list[str]:
    killed = [t for t in trials if t["killed"]]
    return [
        f"kill -9 trials ({ledger} ledger): {len(trials)} ({len(killed)} killed mid-run, the rest "
        f"had finished); resumable to the uninterrupted outcome: "
        f"{sum(t['resumable'] for t in trials)}/{len(trials)}",
        f"  recorded paid calls repeated after a resume: {k['repeats']}; duplicate records: "
        f"{k['duplicates']}; overspent (records): {sum(t['overspent'] for t in trials)}, "
        f"(ledger): {k['ledger_overspent']}",
        f"  requests the server answered (run and resume): {k['answered']}; not in the resumed "
        f"records: {k['unrecorded']}, of which charged in the ledger as estimated (a dead "
        f"process's hold): {k['estimated']} ({k['estimated_usd']:.4f} $), as settled: "
        f"{k['settled_unrecorded']}; lost (counted nowhere): {k['lost']} in "
        f"{k['trials_losing']} trials",
        f"  dead processes' estimated holds with a record in the resumed state (tierflow show): "
        f"{k['estimated_recorded']}/{k['estimated']}",
        f"  estimated holds with no answered request behind them (killed before the reply): "
        f"{k['estimated_unanswered']}; ledgers whose spend is the sum of their charges: "
        f"{k['ledgers_consistent']}/{k['ledgers']}; records the ledger never charged: "
        f"{k['records_uncharged']}",
        f"  holds unsettled at run end (open in the ledger after the resume): {k['holds_left']}",
        f"  calls repeated by the server after a resume (killed work done again): "
        f"{sum(max(0, t['server_repeats']) for t in trials)}",
    ]


def _tool_lines(results: dict[str, Any]) -> tuple[list[str], int]:
    tools = [e for p in results["phases"] for e in p["tools"]]
    longest = max((e["elapsed_s"] for e in tools), default=0.0)
    past = sum(1 for e in tools if e["elapsed_s"] > e["timeout_s"] + 1.0)
    lines = [f"tool calls in the runs: {len(tools)}, longest {longest:.2f} s, past their timeout: "
             f"{past}"]  # fmt: skip
    for h in results["hostile"]:
        lines.append(
            f"  hostile {h['what']}: {h['elapsed_s']:.2f} s (timeout {h['timeout_s']:g} s): "
            f"{h['reply'][:70]!r}"
        )
    return lines, past + sum(h["elapsed_s"] > h["timeout_s"] for h in results["hostile"])


def report(results: dict[str, Any], args: Any) -> str:
    """The tables and the targets; the derived figures go into ``results`` (and its JSON)."""
    phases = results["phases"]
    clean = {p["suite"]: p for p in phases if p["rate"] == 0.0}
    rows = [phase_row(p, clean[p["suite"]] if p["rate"] else None) for p in phases]
    cols = ["graph", "faults", "runs", "answered", "ended", "waiting", "failed", "lost",
            "crashed", "overspent", "same as 0%", "cost $", "wall s"]  # fmt: skip
    body = [
        [r["suite"], f"{r['rate']:.0%} ({r['faults']}/{r['requests']})", r["runs"], r["answered"],
         r["ended"], r["waiting"], r["failed"], r["lost"], r["crashed"], r["overspent"],
         "-" if r["same_as_clean"] is None else r["same_as_clean"], f"{r['cost_usd']:.4f}",
         f"{r['wall_s']:.1f}"]
        for r in rows
    ]  # fmt: skip
    split = results["cost_split"] = cost_split(rows)
    trials = results["kills"]["trials"]
    kills = results["kills"]["totals"] = kill_totals(trials)
    tool_lines, past = _tool_lines(results)
    lines = ["fault runs (ended: a final status other than answered/done, e.g. unverified)",
             table(cols, body), "", *_cost_lines(split), "",
             *_kill_lines(trials, kills, args.ledger), "", *tool_lines]  # fmt: skip
    faulted = [r for r in rows if r["rate"]]
    total = sum(r["runs"] for r in faulted)
    good = sum(r["answered"] + r["ended"] + r["waiting"] for r in faulted)
    from tierflow._failures import BILLED_CAUSES

    causes = split["all"]["causes"]
    unbilled = sum(  # over every phase, the fault-free ones too
        row["usd"]
        for r in rows
        for cause, row in r["failed_attempts"].items()
        if cause not in BILLED_CAUSES
    )
    billed = sum(causes.get(c, {}).get("usd", 0.0) for c in BILLED_CAUSES)
    lines += [
        "",
        "targets",
        f"  at {args.rate:.0%} faults answered/ended or waiting intact: {good}/{total} = "
        f"{good / total if total else 0:.1%} (>= 99%); lost "
        f"{sum(r['lost'] for r in faulted)} (0); crashed {sum(r['crashed'] for r in faulted)} (0)",
        f"  failed attempts charged that were never sent or answered with an error status "
        f"(or other): {unbilled:.4f} $ (0); possibly processed (or cancelled after send) ones: "
        f"{billed:+.4f} $ of {split['all']['extra_usd']:+.4f} $ extra",
        f"  kill -9 resumable: {sum(t['resumable'] for t in trials)}/{len(trials)} (100%); "
        f"recorded calls paid twice: {kills['repeats'] + kills['duplicates']} (0); answered "
        f"calls lost (neither recorded nor charged): {kills['lost']} (0); holds unsettled at "
        f"run end: {kills['holds_left']} (0)",
        f"  overspends: {sum(r['overspent'] for r in rows) + sum(t['overspent'] for t in trials)}"
        " (0)",
        f"  tool calls past their timeout: {past} (0)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=25, help="runs per graph and fault rate")
    p.add_argument("--rate", type=float, default=0.2, help="fault rate of the faulted runs")
    p.add_argument("--kills", type=int, default=12, help="kill -9 trials")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--ledger",
        choices=("sqlite", "memory"),
        default="sqlite",
        help="kill trials' ledger: the Runner's SQLite file beside the checkpoints, or "
        "the process's own (TIERFLOW_LEDGER_URL=memory: rebuilt from state)",
    )
    p.add_argument(
        "--pause-while",
        metavar="PATH",
        help="before each run and trial, wait while this file exists",
    )
    args = p.parse_args(argv)
    if not args.json:
        return run_bench("soak", args, measure, report)
    results = asyncio.run(measure(args))
    # The measurement is kept before the report derives its figures from it.
    write_json(args.json, {"bench": "soak", "args": vars(args), "results": results})
    print()
    print(report(results, args))
    write_json(args.json, {"bench": "soak", "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
