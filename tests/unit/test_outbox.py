"""Side effects that happen once: triage's approved replies go to an outbox, keyed by run and ticket."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.unit.test_budget_runs import tickets
from tierflow.errors import TierflowError
from tierflow.evals.scripted import PERFECT, models_for
from tierflow.graphs import triage
from tierflow.outbox import DeliveryError, deliver, read_outbox
from tierflow.runtime import RunContext
from tierflow.tiers import TierPolicy

UNATTENDED = TierPolicy(name="unattended", human=False)


def _ctx() -> RunContext:
    return RunContext(profile="openai", models=models_for("triage", accuracy=PERFECT),
                      policy=UNATTENDED)  # fmt: skip


def _cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


async def test_a_key_is_delivered_once_to_a_file(tmp_path: Path) -> None:
    box = tmp_path / "out" / "replies.jsonl"
    first = await deliver(str(box), "run-1:t-1", {"body": "hello"})
    again = await deliver(str(box), "run-1:t-1", {"body": "hello"})
    other = await deliver(str(box), "run-1:t-2", {"body": "bye"})
    assert (first["duplicate"], again["duplicate"], other["duplicate"]) == (False, True, False)
    assert again["sent_at"] == first["sent_at"]
    assert [e["key"] for e in read_outbox(box)] == ["run-1:t-1", "run-1:t-2"]


def test_processes_racing_on_one_key_write_it_once(tmp_path: Path) -> None:
    box = tmp_path / "replies.jsonl"
    code = (
        "import asyncio, sys; from tierflow.outbox import deliver; "
        "asyncio.run(deliver(sys.argv[1], 'run-9:t-9', {'n': sys.argv[2]}))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(box), str(i)]) for i in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    assert [e["key"] for e in read_outbox(box)] == ["run-9:t-9"]


async def test_an_unreachable_webhook_is_a_delivery_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError, match=f"could not deliver k to http://127.0.0.1:{port}"):
        await deliver(f"http://127.0.0.1:{port}/hook", "k", {})


async def test_triage_delivers_each_approved_reply_once_with_its_key(tmp_path: Path) -> None:
    box = tmp_path / "replies.jsonl"
    graph = triage.build().compile(checkpointer=InMemorySaver())
    out = await graph.ainvoke({"tickets": tickets(6), "outbox": str(box)}, _cfg(), context=_ctx())
    sent = {i: t for i, t in out["tickets_out"].items() if t["status"] == "sent"}
    assert sent, out["tickets_out"]
    entries = read_outbox(box)
    assert sorted(e["key"] for e in entries) == sorted(f"{out['run_id']}:{i}" for i in sent)
    for ticket_id, outcome in sent.items():
        assert outcome["delivery"]["key"] == f"{out['run_id']}:{ticket_id}"
        assert outcome["delivery"]["duplicate"] is False
    by_key = {e["key"]: e["message"] for e in entries}
    first = next(iter(sent))
    assert by_key[f"{out['run_id']}:{first}"]["body"] == sent[first]["draft"]["body"]
    # Tickets without a reply are not delivered.
    assert all(t["delivery"] is None for t in out["tickets_out"].values() if t["status"] != "sent")


class DiesAtTheFirstSendReceipt(InMemorySaver):
    """A checkpointer whose process dies as it saves the first delivery receipt: the outbox has
    the message, the checkpoint never records it, and nothing else is saved until a restart."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = self.died = False

    def _check(self, writes: Any = ()) -> None:
        receipt = [v for c, v in writes if c == "__return__" and isinstance(v, dict) and "key" in v]
        if receipt and not self.died:
            self.dead = self.died = True
        if self.dead:
            raise RuntimeError("the process died here")

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self._check()
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self._check(writes)
        super().put_writes(config, writes, task_id, task_path)


async def test_a_reply_sent_before_a_crash_is_not_sent_again_on_resume(tmp_path: Path) -> None:
    box = tmp_path / "replies.jsonl"
    saver = DiesAtTheFirstSendReceipt()
    graph = triage.build().compile(checkpointer=saver)
    cfg, ctx = _cfg(), _ctx()
    inputs = {"tickets": tickets(6), "outbox": str(box)}
    with pytest.raises(RuntimeError, match="the process died here"):
        await graph.ainvoke(inputs, cfg, context=ctx, durability="sync")
    before = {e["key"] for e in read_outbox(box)}
    assert saver.died and before  # the outbox has them, the checkpoint does not

    saver.dead = False  # a new process on the same database
    out = await graph.ainvoke(None, cfg, context=ctx, durability="sync")  # resume

    sent = {i: t for i, t in out["tickets_out"].items() if t["status"] == "sent"}
    keys = [e["key"] for e in read_outbox(box)]
    assert sorted(keys) == sorted(f"{out['run_id']}:{i}" for i in sent)  # each once
    assert len(keys) == len(set(keys))
    # Replies whose receipts were lost were offered again; the outbox recognised their keys.
    for outcome in sent.values():
        assert outcome["delivery"]["duplicate"] == (outcome["delivery"]["key"] in before)


async def test_a_bad_outbox_is_refused_before_any_model_call() -> None:
    graph = triage.build().compile(checkpointer=InMemorySaver())
    with pytest.raises(TierflowError, match="invalid input at outbox"):
        await graph.ainvoke({"tickets": tickets(1), "outbox": "  "}, _cfg(), context=_ctx())
