"""The `tierflow` command as a user runs it: subprocesses against one real llama.cpp server.

Profile ``ci`` points all three tiers at the ``llama_nano`` server (Qwen2.5-Coder-0.5B) with the
``openai`` profile's prices, so every request has a nonzero cost that the tests recompute by
hand and compare with the checkpoint and with ``tierflow show``. The model's labels vary from
run to run: the tests assert structure and invariants, never a particular label.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tierflow.faults import profile_toml
from tierflow.runner import Runner, RunResult

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# The openai profile's prices, USD per 1M tokens: (input, cached input, output).
PRICES: dict[str, tuple[float, float, float]] = {
    "nano": (0.2, 0.02, 1.25),
    "mini": (0.75, 0.075, 4.5),
    "flagship": (2.5, 0.25, 15.0),
}
# A critical outage (a flagship draft and a review are likely) and a low feature request.
TICKET_IDS = ("t-020", "t-015")
# One llama.cpp server answers the requests of all three tiers one at a time, so a request's
# timeout also covers its wait behind the parallel branches queued before it.
TIMEOUT_S = 180
PROGRESS = re.compile(r"^\s+\S+\s+(nano|mini|flagship)\s+\S+\s+[\d.]+s\s+\d+ tok\s+\$", re.M)
OUTCOMES = {"sent", "rejected", "no_reply_needed", "stopped", "failed"}


def served_model(base_url: str) -> str:
    """The model alias the OpenAI-compatible server at ``base_url`` serves."""
    with urllib.request.urlopen(f"{base_url}/models", timeout=30) as resp:
        return str(json.load(resp)["data"][0]["id"])


def ci_profile_toml(base_url: str, model: str) -> str:
    """A tierflow.toml declaring profile ``ci``: every tier on one server, openai prices."""
    return profile_toml(
        "ci", base_url, PRICES, key_env=None, model=model, timeout_s=TIMEOUT_S, max_retries=1,
        tool_mode="forced", max_output_tokens=256,
    )  # fmt: skip


def ci_env(config: Path, data_dir: Path) -> dict[str, str]:
    """The caller's environment with profile ``ci`` selected and tracing (network) off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIERFLOW_", "LANGSMITH_", "LANGCHAIN_"))
        and k not in ("OPENAI_API_KEY", "FORCE_COLOR")
    }
    env.update(
        TIERFLOW_CONFIG=str(config),
        TIERFLOW_PROFILE="ci",
        TIERFLOW_DATA_DIR=str(data_dir),
        PYTHONIOENCODING="utf-8",
        NO_COLOR="1",
    )
    return env


def hand_cost(record: Mapping[str, Any]) -> float:
    """A usage record's cost recomputed from PRICES (cached tokens are part of input_tokens)."""
    inp, cached_price, out = PRICES[record["tier"]]
    cached = record["cached_tokens"]
    fresh = record["input_tokens"] - cached
    return (fresh * inp + cached * cached_price + record["output_tokens"] * out) / 1_000_000


def _tierflow() -> list[str]:
    script = Path(sys.executable).with_name("tierflow")  # the installed console script
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from tierflow.cli import app; app()"]


@dataclass(frozen=True)
class Cli:
    """Runs ``tierflow`` in a scratch folder and reads its threads back from the checkpoint."""

    cwd: Path
    env: dict[str, str]
    data_dir: Path

    def __call__(self, *args: str, expect: int | set[int] = 0, timeout: float = 480) -> str:
        """Run tierflow; its exit code must be ``expect`` (or one of them): 0 finished,
        1 failed/stopped, 2 bad input, 3 waiting for a human, 4 unverified."""
        started = time.monotonic()
        proc = subprocess.run(
            [*_tierflow(), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = proc.stdout + proc.stderr
        print(f"tierflow {args[0]}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
        allowed = {expect} if isinstance(expect, int) else expect
        assert proc.returncode in allowed, f"tierflow {list(args)} exited {proc.returncode}:\n{out}"
        return out

    def state(self, thread: str) -> RunResult:
        return asyncio.run(Runner(self.data_dir).state(thread))


def _cli(root: Path, base_url: str, model: str) -> Cli:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "tierflow.toml"
    config.write_text(ci_profile_toml(base_url, model))
    work = root / "cwd"  # no langgraph.json above it: the CLI falls back to the installed one
    work.mkdir(exist_ok=True)
    data_dir = root / "data"
    return Cli(cwd=work, env=ci_env(config, data_dir), data_dir=data_dir)


@pytest.fixture(scope="module")
def model_alias(llama_nano: str) -> str:
    return served_model(llama_nano)


@pytest.fixture
def cli(tmp_path: Path, llama_nano: str, model_alias: str) -> Cli:
    return _cli(tmp_path, llama_nano, model_alias)


@pytest.fixture
def offline_cli(tmp_path: Path) -> Cli:
    """Profile ``ci`` on a port nobody serves: for runs that must fail before any request."""
    return _cli(tmp_path, "http://127.0.0.1:9/v1", "no-model")


def reference_tickets() -> dict[str, dict[str, Any]]:
    """The chosen tickets of evals/data/triage.jsonl, with their reference labels."""
    rows = [
        json.loads(line) for line in (REPO / "evals/data/triage.jsonl").read_text().splitlines()
    ]
    return {r["id"]: r for r in rows if r["id"] in TICKET_IDS}


@pytest.fixture
def tickets_file(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.jsonl"
    fields = ("id", "subject", "body", "customer_email")
    rows = [{k: r[k] for k in fields} for r in reference_tickets().values()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def thread_of(out: str) -> str:
    match = re.search(r"^thread: (\S+)$", out, re.M)
    assert match, f"no 'thread:' line in:\n{out}"
    return match.group(1)


def table(out: str, title: str) -> dict[str, list[str]]:
    """Rows of one rich table in the CLI output: first cell -> the other cells."""
    assert title in out, f"no table {title!r} in:\n{out}"
    rows: dict[str, list[str]] = {}
    for line in out.split(title, 1)[1].splitlines()[1:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def answer_for(value: Mapping[str, Any], refs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a reviewer answers: approve drafts; for escalations, supply the reference result."""
    if value["kind"] == "draft_review":
        return {"action": "approve"}
    assert value["kind"] == "escalation", f"unexpected interrupt with a $0.5 budget: {value}"
    task = value["task"]
    if value["subagent"] == "draft":
        subject = f"Re: {task['ticket']['subject']}"
        return {"action": "edit", "value": {"subject": subject, "body": "We are on it."}}
    ref = refs[task["id"]]["reference"]
    if value["subagent"] == "classify":
        label = {"category": ref["category"], "urgency": ref["urgency"]}
        return {"action": "edit", "value": {**label, "complex": ref["needs_reply_draft"]}}
    return {"action": "edit", "value": ref["fields"]}


def drive_to_end(cli: Cli, thread: str, rounds: int = 4) -> tuple[RunResult, str]:
    """Answer every pending interrupt with `tierflow resume` until the thread is done."""
    refs, out = reference_tickets(), ""
    result = cli.state(thread)
    for _ in range(rounds):
        if result.done:
            break
        print("answering", sorted(i.value["kind"] for i in result.interrupts))
        flags: list[str] = []
        for intr in result.interrupts:
            flags += ["--answer-for", f"{intr.id}={json.dumps(answer_for(intr.value, refs))}"]
        out = cli("resume", thread, *flags, expect={0, 3})
        assert thread_of(out) == thread
        result = cli.state(thread)
    assert result.done, (
        f"still waiting after {rounds} resumes: {[i.value for i in result.interrupts]}"
    )
    return result, out


def check_records(records: list[dict[str, Any]], base_url: str, model: str) -> None:
    """Every request is on a ci tier, priced by hand, with server-reported tokens."""
    assert records, "no usage records"
    for rec in records:
        print(
            f"{rec['node']:<10} {rec['tier']:<8} {rec['latency_s']:6.1f}s "
            f"{rec['input_tokens']:5d}+{rec['output_tokens']:<4d} ${rec['cost_usd']:.6f} "
            f"{rec['escalation_reason'] or ''} {rec['error'] or ''}"
        )
    assert len({r["id"] for r in records}) == len(records)
    for rec in records:
        assert rec["tier"] in PRICES and rec["model"] == model and rec["endpoint"] == base_url
        if rec["error"] is None:
            assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0, rec
        assert rec["cost_usd"] == pytest.approx(hand_cost(rec), abs=1e-9), rec


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "triage", "BAD_TICKETS"), "invalid input at tickets[0]: body: Field required"),
        (("run", "no_such_graph", "hello"), "no graph named 'no_such_graph'"),
        (("run", "triage", '{"tickets": ['), "INPUT looks like JSON but is not valid"),
        (("resume", "no-such-thread", "--answer", "approve"), "unknown thread 'no-such-thread'"),
    ],
    ids=["missing-field", "unknown-graph", "broken-json", "unknown-thread"],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(
    offline_cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "t-1", "subject": "x", "customer_email": "a@b.example"}))
    out = offline_cli(*(str(bad) if a == "BAD_TICKETS" else a for a in args), expect=2)

    assert out.startswith("error: ") or "\nerror: " in out, out
    assert message in " ".join(out.split()), out
    assert "Traceback" not in out and not PROGRESS.search(out)


def test_triage_run_resume_show_agree_with_the_checkpoint(
    cli: Cli, tickets_file: Path, llama_nano: str, model_alias: str
) -> None:
    out = cli("run", "triage", str(tickets_file), "--budget-usd", "0.5", expect={0, 3})

    assert "running triage on profile ci" in out
    assert PROGRESS.search(out), f"no progress line naming a tier:\n{out}"
    assert "Usage by tier" in out and "Usage by node" in out
    thread = thread_of(out)
    if cli.state(thread).interrupts:
        assert "waiting for a human" in out and f"tierflow resume {thread}" in out

    result, _ = drive_to_end(cli, thread)
    values = result.values
    assert sorted(values["tickets_out"]) == sorted(TICKET_IDS)
    for tid, ticket in values["tickets_out"].items():
        # Every draft was approved and every escalated task got a result, so none may be left
        # stopped, failed or rejected; a reply is sent exactly when the labels call for one.
        assert ticket["status"] in {"sent", "no_reply_needed"}, (tid, ticket)
        label = ticket["classification"]
        assert label is not None and ticket["fields"] is not None, (tid, ticket)
        needs_reply = label["urgency"] in ("high", "critical") or label["complex"]
        assert (ticket["status"] == "sent") == needs_reply, (tid, ticket)
        assert (ticket["draft"] is not None) == needs_reply, (tid, ticket)

    records = values["usage"]
    check_records(records, llama_nano, model_alias)
    assert {"classify", "extract"} <= {r["node"] for r in records}
    assert sum(r["cost_usd"] for r in records) <= 0.5

    shown = cli("show", thread)
    assert thread_of(shown) == thread
    rows = table(shown, "Usage by tier")
    tiers = {r["tier"] for r in records}
    assert set(rows) == tiers | {"TOTAL"}, rows
    for tier in tiers:
        mine = [r for r in records if r["tier"] == tier]
        requests, errors, in_tok, _cached, out_tok, cost = rows[tier][:6]
        assert int(requests) == len(mine), (tier, rows[tier])
        assert int(errors) == sum(r["error"] is not None for r in mine)
        assert int(in_tok) == sum(r["input_tokens"] for r in mine)
        assert int(out_tok) == sum(r["output_tokens"] for r in mine)
        assert float(cost) == pytest.approx(sum(map(hand_cost, mine)), abs=1e-6)
    assert int(rows["TOTAL"][0]) == len(records)
    assert float(rows["TOTAL"][5]) == pytest.approx(sum(map(hand_cost, records)), abs=1e-6)
    assert float(rows["TOTAL"][5]) > 0


def test_tiny_budget_interrupts_before_spending_and_stop_ends_the_run(
    cli: Cli, tickets_file: Path
) -> None:
    budget = 0.0001  # below the worst case of any single request on any tier
    out = cli("run", "triage", str(tickets_file), "--budget-usd", str(budget), expect=3)

    thread = thread_of(out)
    before = cli.state(thread)
    assert before.interrupts, out
    assert '"kind": "budget"' in out and "waiting for a human" in out
    spent = sum(r["cost_usd"] for r in before.values["usage"])
    assert spent <= budget
    for intr in before.interrupts:
        gate = intr.value
        assert gate["kind"] == "budget" and gate["budget_usd"] == budget, gate
        assert gate["spent_usd"] <= budget and gate["remaining_usd"] <= budget, gate

    out = cli("resume", thread, "--answer", '{"action": "stop"}', expect={0, 1})

    after = cli.state(thread)
    assert after.done, [i.value for i in after.interrupts]
    assert not PROGRESS.search(out), f"a model was called after stop:\n{out}"
    assert after.values["usage"] == before.values["usage"]
    tickets = after.values["tickets_out"]
    assert sorted(tickets) == sorted(TICKET_IDS)
    assert {t["status"] for t in tickets.values()} == {"stopped"}
    assert all("budget" in t["error"] for t in tickets.values()), tickets


def test_codebase_qa_answers_or_waits_for_a_human(
    cli: Cli, llama_nano: str, model_alias: str
) -> None:
    question = "Where is the function cost_usd defined?"
    root = REPO / "tierflow"
    out = cli(
        "run", "codebase_qa", question, "--root", str(root), "--budget-usd", "0.5",
        expect={0, 3, 4},
    )  # fmt: skip

    assert "running codebase_qa on profile ci" in out and PROGRESS.search(out), out
    result = cli.state(thread_of(out))
    values = result.values
    if result.interrupts:  # a subagent failed on every tier, or the answer is unverified
        kinds = {i.value["kind"] for i in result.interrupts}
        assert kinds <= {"escalation", "answer_review"}, result.interrupts
        assert "waiting for a human" in out
    elif values["status"] == "answered":
        assert values["answer"]["answer"] and values["answer"]["citations"], values["answer"]
        for cite in values["answer"]["citations"]:
            assert (root / cite["path"]).is_file() and cite["line"] >= 1, cite
    else:  # the answer failed its citation check twice: the run says why
        assert values["status"] in ("unverified", "failed"), values
        assert values.get("answer_problems"), values
        assert "warning:" in out
    records = values["usage"]
    check_records(records, llama_nano, model_alias)
    # The index has the one part's fact, so the first searches are planned without a model:
    # no planning call, a first_round shortcut, and the search for the question's name ran.
    assert "supervisor" not in {r["node"] for r in records}, records
    reasons = {e.get("reason") for e in values["events"] if e["kind"] == "shortcut"}
    assert {"first_round", "enough"} <= reasons, values["events"]
    searches = [r for r in (values.get("results") or {}).values() if r["subagent"] == "search"]
    assert [s["task"]["query"] for s in searches] == ["cost_usd"], values.get("results")
