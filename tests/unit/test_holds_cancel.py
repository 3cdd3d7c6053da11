"""A request cancelled in flight: charged as estimated once it was sent, $0 before.

A sibling that failed in a parallel fan-out, or a cancelled run, cancels the tasks still
running. The provider may have processed a request it had already received, so that one is
charged at its reservation; the cancelled node's update is lost, so the run's ledger keeps its
usage record.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from tierflow.budget import end_run, ledger_for, plan_call
from tierflow.calling import CallSite, call_model
from tierflow.runtime import engine_for
from tierflow.testing import Request, ScriptedChatModel
from tierflow.usage import UsageRecord

pytestmark = pytest.mark.usefixtures("isolated_env")

MSGS = [HumanMessage("a short question")]


class Hanging(ScriptedChatModel):
    """Takes every request it is sent, and never answers it (until its task is cancelled)."""

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self._requests.append(Request(messages=list(messages)))
        await asyncio.Event().wait()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_a_request_cancelled_after_it_was_sent_is_charged_as_estimated(make_ctx) -> None:
    nano = Hanging(script=[], label="nano-hangs")
    engine = engine_for(make_ctx({"nano": nano}, profile="openai"))
    state = {"run_id": uuid.uuid4().hex, "budget_usd": 0.05}
    site = CallSite(node="unit", tier="nano", subagent="search", task_id="t1")
    call = asyncio.create_task(call_model(engine, site, state, MSGS))
    await _until(lambda: nano.requests)  # the request reached the provider

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    ledger = ledger_for(state)
    plan = plan_call(engine.config.tier("nano"), MSGS, [], 0.05)
    assert plan is not None
    (rec,) = ledger.kept()
    assert (rec["cause"], rec["billing"]) == ("cancelled after send", "estimated")
    assert rec["cost_usd"] == pytest.approx(plan[0]) and plan[0] > 0
    assert (rec["node"], rec["tier"], rec["subagent"], rec["task_id"]) == (
        "unit", "nano", "search", "t1",
    )  # fmt: skip
    assert rec["model"] == "nano-hangs" and rec["run_id"] == state["run_id"]
    UsageRecord.model_validate(rec)
    assert ledger.spent_usd == pytest.approx(plan[0]) and ledger.in_flight == 0
    end_run(state)


async def test_only_the_request_that_was_sent_is_charged_when_both_are_cancelled(
    make_ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One request at a time on nano: the second waits for a slot, never sent.
    monkeypatch.setenv("TIERFLOW_TIERS__NANO__MAX_CONCURRENCY", "1")
    nano = Hanging(script=[], label="nano-hangs")
    engine = engine_for(make_ctx({"nano": nano}, profile="openai"))
    assert engine.config.tier("nano").max_concurrency == 1
    state = {"run_id": uuid.uuid4().hex, "budget_usd": 0.05}
    site = CallSite(node="unit", tier="nano")
    sent = asyncio.create_task(call_model(engine, site, state, MSGS))
    await _until(lambda: nano.requests)
    queued = asyncio.create_task(call_model(engine, site, state, MSGS))
    ledger = ledger_for(state)
    await _until(lambda: ledger.in_flight == 2)  # reserved, waiting for the slot

    queued.cancel()
    sent.cancel()
    for task in (queued, sent):
        with pytest.raises(asyncio.CancelledError):
            await task

    assert len(nano.requests) == 1
    (rec,) = ledger.kept()  # the queued one left no record and cost nothing
    assert rec["cause"] == "cancelled after send"
    assert ledger.spent_usd == pytest.approx(rec["cost_usd"]) and ledger.in_flight == 0
    end_run(state)
