"""tierflow.middleware on real create_agent graphs, every tier a scripted model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, RetryPolicy
from pydantic import BaseModel

from tierflow.config import Price, TierConfig, TierSpec
from tierflow.errors import ModelCallError, SpecError
from tierflow.middleware import BudgetMiddleware, TierMiddleware
from tierflow.testing import ScriptedChatModel, TransientError, text_reply, tool_reply
from tierflow.usage import UsageRecord, spent_usd, summarize

LADDER = ("nano", "mini", "flagship")
# Output only is priced, at powers of two per token, so every sum of dollars is exact in floats.
PER_TOKEN_USD = {"nano": 2**-10, "mini": 2**-9, "flagship": 2**-8}
NANO = PER_TOKEN_USD["nano"]
NO_WAIT = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=3)


def _config(max_output_tokens: int = 200) -> TierConfig:
    tiers = {
        name: TierSpec(
            name=name,
            model=f"{name}-model",
            base_url="http://127.0.0.1:9/v1",
            price=Price(input=0, cached_input=0, output=usd * 1_000_000),
            max_output_tokens=max_output_tokens,
        )
        for name, usd in PER_TOKEN_USD.items()
    }
    return TierConfig(profile="test", ladder=LADDER, tiers=tiers)


CONFIG = _config()


@tool
def lookup(q: str) -> str:
    """Look ``q`` up in the facts table."""
    return f"{q} = 42"


class Answer(BaseModel):
    value: int


def _models(**scripts: list[Any]) -> dict[str, ScriptedChatModel]:
    return {
        t: ScriptedChatModel(script=scripts.get(t, []), label=t, spend_max_tokens=True)
        for t in LADDER
    }


def _agent(models: dict[str, ScriptedChatModel], *middleware: Any, **kwargs: Any) -> Any:
    return create_agent(model=models["flagship"], tools=[lookup], middleware=list(middleware),
                        **kwargs)  # fmt: skip


def _tiers(out: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(r["tier"], r["escalation_reason"]) for r in out["usage"]]


def _says_42(request: str, reply: Any, state: Any) -> str | None:
    return None if "42" in reply.text else "the answer must give the number"


async def _ask(agent: Any, text: str = "What is x?", **kwargs: Any) -> dict[str, Any]:
    return await agent.ainvoke({"messages": [("user", text)]}, **kwargs)


async def test_a_good_nano_reply_never_calls_mini() -> None:
    models = _models(nano=[text_reply("x is 42")])
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42)))
    assert out["messages"][-1].text == "x is 42"
    assert _tiers(out) == [("nano", None)]
    assert models["mini"].requests == [] and models["flagship"].requests == []
    (verified,) = [e for e in out["events"] if e["kind"] == "verified"]
    assert verified["ok"] and verified["check"] == "agent" and verified["tier"] == "nano"
    UsageRecord.model_validate(out["usage"][0])
    assert out["tier"] == "nano" and out["status"] is None


async def test_a_rejected_answer_climbs_nano_mini_flagship_and_the_records_say_why() -> None:
    models = _models(nano=[text_reply("no idea")], mini=[text_reply("maybe 7")],
                     flagship=[text_reply("x is 42")])  # fmt: skip
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42)))
    assert out["messages"][-1].text == "x is 42"
    assert _tiers(out) == [("nano", None), ("mini", "verifier_rejected"),
                           ("flagship", "verifier_rejected")]  # fmt: skip
    climbs = [(e["from"], e["to"], e["reason"]) for e in out["events"] if e["kind"] == "escalation"]
    assert climbs == [("nano", "mini", "verifier_rejected"),
                      ("mini", "flagship", "verifier_rejected")]  # fmt: skip
    # Only the accepted reply is in the conversation; the run stays on the flagship.
    assert [m.text for m in out["messages"] if isinstance(m, AIMessage)] == ["x is 42"]
    assert out["tier"] == "flagship"
    rows = {row.key: row for row in summarize(out["usage"], by="tier")}
    assert rows["TOTAL"].requests == 3 and rows["TOTAL"].escalations == 2


async def test_schema_failures_climb_bad_tool_arguments_and_the_response_format() -> None:
    models = _models(
        nano=[tool_reply("lookup", {"query": "x"})],  # no such argument
        mini=[tool_reply("Answer", {"value": "many"})],  # not an integer
        flagship=[tool_reply("Answer", {"value": 42})],
    )
    mw = TierMiddleware(CONFIG, models=models)
    out = await _ask(_agent(models, mw, response_format=Answer))
    assert out["structured_response"] == Answer(value=42)
    assert _tiers(out) == [("nano", None), ("mini", "schema_validation"),
                           ("flagship", "schema_validation")]  # fmt: skip
    details = [e["detail"] for e in out["events"] if e["kind"] == "escalation"]
    assert "missing required argument 'q'" in details[0] and "response format" in details[1]


async def test_a_final_answer_that_is_not_json_of_the_response_schema_climbs() -> None:
    models = _models(nano=[text_reply("forty-two")], mini=[text_reply('{"value": 42}')])
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models, response_schema=Answer)))
    assert _tiers(out) == [("nano", None), ("mini", "schema_validation")]
    assert "not a valid Answer" in out["events"][0]["detail"]


async def test_a_repeated_tool_call_is_a_loop_that_climbs_the_ladder() -> None:
    same = lambda: tool_reply("lookup", {"q": "x"})  # noqa: E731
    models = _models(nano=[same(), same(), same()], mini=[same()], flagship=[text_reply("42")])
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models)))  # max_repeats=1
    assert _tiers(out) == [("nano", None), ("nano", None), ("nano", None),
                           ("mini", "loop_detected"), ("flagship", "loop_detected")]  # fmt: skip
    assert "called 2 times before" in out["events"][0]["detail"]
    assert sum(isinstance(m, AIMessage) and bool(m.tool_calls) for m in out["messages"]) == 2


async def test_the_top_tiers_rejected_answer_is_kept_and_marked_unverified() -> None:
    models = _models(nano=[text_reply("no")], mini=[text_reply("no")], flagship=[text_reply("7")])
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42)))
    assert out["messages"][-1].text == "7" and out["status"] == "unverified"
    last = [e for e in out["events"] if e["kind"] == "escalation"][-1]
    assert (last["from"], last["to"], last["reason"]) == ("flagship", None, "verifier_rejected")


async def test_a_smaller_output_cap_the_agent_asked_for_is_kept_under_a_budget() -> None:
    from langchain.agents.middleware import wrap_model_call

    @wrap_model_call
    async def short(request: Any, handler: Any) -> Any:
        return await handler(request.override(model_settings={"max_tokens": 20}))

    models = _models(nano=[text_reply("42")])
    budget = BudgetMiddleware(1.0, profile=CONFIG, tier="nano")
    out = await _ask(create_agent(model=models["nano"], middleware=[short, budget]))
    assert models["nano"].requests[0].max_tokens == 20 and out["usage"][0]["output_tokens"] == 20


async def test_a_repair_goes_back_to_the_same_tier_with_the_reason_first() -> None:
    models = _models(nano=[text_reply("no idea"), text_reply("x is 42")])
    mw = TierMiddleware(CONFIG, models=models, verifier=_says_42, repairs=1)
    out = await _ask(_agent(models, mw))
    assert _tiers(out) == [("nano", None), ("nano", None)]
    assert "rejected (verifier_rejected)" in models["nano"].requests[1].messages[-1].text


async def test_errors_are_classified_as_the_engine_does() -> None:
    models = _models(nano=[TypeError("bad argument")],
                     mini=[TransientError("connection reset"), text_reply("42")])  # fmt: skip
    out = await _ask(_agent(models, TierMiddleware(CONFIG, models=models, retry=NO_WAIT)))
    assert _tiers(out) == [("nano", None), ("mini", "error"), ("mini", "error")]
    bad, blip, ok = out["usage"]
    assert bad["cause"] == "other" and bad["cost_usd"] == 0 and "bad argument" in bad["error"]
    # A connection lost after sending may have been billed: charged at its worst case.
    assert blip["cause"] == "possibly processed" and blip["billing"] == "estimated"
    assert blip["cost_usd"] > 0 and ok["error"] is None
    assert out["events"][0]["reason"] == "error"


async def test_the_top_tiers_error_is_raised() -> None:
    models = _models(nano=[TypeError("bad argument")])
    mw = TierMiddleware(CONFIG, models=models, ladder=("nano",))
    with pytest.raises(ModelCallError, match="bad argument"):
        await _ask(_agent(models, mw))


async def test_the_budget_stops_the_run_before_it_spends_past_the_limit() -> None:
    # A reply spends all the output tokens it may: 200, 200, then the 100 the budget has left;
    # the fourth request cannot fit (it needs room for 64) and is never sent.
    calls = [tool_reply("lookup", {"q": q}) for q in "abc"]
    models = _models(nano=calls)
    budget = BudgetMiddleware(500 * NANO, at_limit="stop", profile=CONFIG, tier="nano")
    out = await _ask(_agent({**models, "flagship": models["nano"]}, budget))
    assert [r["cost_usd"] for r in out["usage"]] == [200 * NANO, 200 * NANO, 100 * NANO]
    assert spent_usd(out["usage"]) == 500 * NANO == budget.budget_usd
    assert [r.max_tokens for r in models["nano"].requests] == [200, 200, 100]
    assert out["status"] == "budget_exhausted" and "budget exhausted" in out["messages"][-1].text
    assert len(models["nano"].requests) == 3


async def test_tiers_under_a_budget_are_metered_once_each_at_their_own_price() -> None:
    models = _models(nano=[text_reply("no idea")], mini=[text_reply("42")])
    agent = _agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42),
                   BudgetMiddleware(1.0, at_limit="stop"))  # fmt: skip
    out = await _ask(agent)
    assert _tiers(out) == [("nano", None), ("mini", "verifier_rejected")]
    assert [r["cost_usd"] for r in out["usage"]] == [200 * NANO, 400 * NANO]  # each tier's price
    assert out["budget_usd"] == 1.0 and out["run_id"]


async def test_interrupt_at_the_limit_resumes_with_a_raised_budget() -> None:
    calls = [tool_reply("lookup", {"q": q}) for q in "abc"]
    models = _models(nano=[*calls, text_reply("x is 42")])
    budget = BudgetMiddleware(500 * NANO, profile=CONFIG, tier="nano")  # at_limit="interrupt"
    agent = _agent({**models, "flagship": models["nano"]}, budget, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "budget-raise"}}
    out = await _ask(agent, config=config)
    (asked,) = out["__interrupt__"]
    assert asked.value["kind"] == "budget" and asked.value["remaining_usd"] == 0
    raised = {"action": "raise", "budget_usd": 700 * NANO}
    out = await agent.ainvoke(Command(resume=raised), config)
    assert out["messages"][-1].text == "x is 42" and out["budget_usd"] == 700 * NANO
    assert spent_usd(out["usage"]) == 700 * NANO and len(out["usage"]) == 4
    assert any("budget raised" in n for e in out["events"] if e["kind"] == "budget"
               for n in e["notes"])  # fmt: skip


async def test_interrupt_at_the_limit_can_stop_the_run() -> None:
    models = _models(nano=[tool_reply("lookup", {"q": "a"})])
    budget = BudgetMiddleware(200 * NANO, profile=CONFIG, tier="nano")
    agent = _agent({**models, "flagship": models["nano"]}, budget, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "budget-stop"}}
    assert "__interrupt__" in await _ask(agent, config=config)
    out = await agent.ainvoke(Command(resume={"action": "stop"}), config)
    assert out["status"] == "stopped" and spent_usd(out["usage"]) == 200 * NANO


async def test_a_climb_that_needs_a_human_never_replays_the_paid_reply() -> None:
    # nano's rejected reply spends 200 of 300; mini's 64 tokens do not fit, so the question
    # waits for the next model step, and nano is not asked again when the run resumes.
    models = _models(nano=[text_reply("no idea")], mini=[text_reply("42")])
    agent = _agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42),
                   BudgetMiddleware(300 * NANO), checkpointer=InMemorySaver())  # fmt: skip
    config = {"configurable": {"thread_id": "budget-climb"}}
    out = await _ask(agent, config=config)
    (asked,) = out["__interrupt__"]
    assert asked.value["tier"] == "mini" and asked.value["spent_usd"] == 200 * NANO
    out = await agent.ainvoke(Command(resume={"action": "raise", "budget_usd": 1.0}), config)
    assert out["messages"][-1].text == "42"
    assert _tiers(out) == [("nano", None), ("mini", "verifier_rejected")]
    assert len(models["nano"].requests) == 1 and spent_usd(out["usage"]) == 600 * NANO
    notes = [n for e in out["events"] if e["kind"] == "budget" for n in e["notes"]]
    assert notes == ["budget raised to $1.000000"]  # the deferral itself stopped nothing


async def test_cheaper_at_the_limit_steps_down_a_tier() -> None:
    models = _models(mini=[text_reply("42")])
    mw = TierMiddleware(CONFIG, models=models, start="flagship")
    out = await _ask(_agent(models, mw, BudgetMiddleware(200 * NANO, at_limit="cheaper")))
    # The budget pays 50 flagship tokens (under the 64 a request needs), or 100 on mini.
    assert [(r["tier"], r["cost_usd"]) for r in out["usage"]] == [("mini", 200 * NANO)]
    assert models["mini"].requests[0].max_tokens == 100


def test_the_middlewares_run_under_a_sync_invoke_too() -> None:
    models = _models(nano=[text_reply("no")], mini=[text_reply("42")])
    agent = _agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42),
                   BudgetMiddleware(1.0, at_limit="stop"))  # fmt: skip
    out = agent.invoke({"messages": [("user", "x?")]})
    assert _tiers(out) == [("nano", None), ("mini", "verifier_rejected")]


def test_a_sync_invoke_is_interrupted_at_the_limit_and_resumed() -> None:
    models = _models(nano=[tool_reply("lookup", {"q": "a"}), text_reply("done")])
    budget = BudgetMiddleware(200 * NANO, profile=CONFIG, tier="nano")
    agent = _agent({**models, "flagship": models["nano"]}, budget, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "budget-sync"}}
    assert agent.invoke({"messages": [("user", "x?")]}, config)["__interrupt__"]
    out = agent.invoke(Command(resume={"action": "raise", "budget_usd": 1.0}), config)
    assert out["messages"][-1].text == "done" and len(out["usage"]) == 2


async def test_a_budget_listed_before_the_tiers_is_refused_with_the_fix() -> None:
    models = _models()
    agent = _agent(
        models, BudgetMiddleware(1.0, profile=CONFIG), TierMiddleware(CONFIG, models=models)
    )
    with pytest.raises(SpecError, match="list TierMiddleware first"):
        await _ask(agent)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"ladder": ("nano", "huge")}, "names tier 'huge'"), ({"start": "huge"}, "not on its ladder"),
     ({"max_repeats": -1}, "0 or more"), ({"response_schema": dict}, "pydantic model")],
)  # fmt: skip
def test_bad_tier_settings_are_refused_when_declared(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        TierMiddleware(CONFIG, models=_models(), **kwargs)


@pytest.mark.parametrize(("budget", "at_limit"), [(0, "stop"), (1.0, "ask")])
def test_bad_budget_settings_are_refused_when_declared(budget: float, at_limit: Any) -> None:
    with pytest.raises(SpecError):
        BudgetMiddleware(budget, at_limit=at_limit, profile=CONFIG)


async def test_each_request_is_tagged_in_traces_with_its_tier_as_the_engine_tags_them() -> None:
    from langchain_core.callbacks import AsyncCallbackHandler

    class Recorder(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[tuple[list[str], dict[str, Any]]] = []

        async def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
            self.seen.append((kw.get("tags") or [], kw.get("metadata") or {}))

    models = _models(nano=[text_reply("no")], mini=[text_reply("42")])
    agent = _agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42),
                   BudgetMiddleware(1.0))  # fmt: skip
    recorder = Recorder()
    await _ask(agent, config={"callbacks": [recorder]})
    assert [m["tierflow_tier"] for _, m in recorder.seen] == ["nano", "mini"]
    assert recorder.seen[1][1]["tierflow_escalation_reason"] == "verifier_rejected"
    assert "tier:mini" in recorder.seen[1][0]
    # What is left once nano's reply and mini's own reservation (200 tokens) are counted.
    assert recorder.seen[1][1]["tierflow_budget_remaining_usd"] == 1.0 - 200 * NANO - 400 * NANO


@pytest.mark.parametrize("module", ["tierflow.middleware", "tierflow.checks"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    failed, attempted = doctest.testmod(importlib.import_module(module))
    assert attempted > 0 and failed == 0


async def test_streamed_tokens_say_which_tier_gave_them() -> None:
    models = _models(nano=[text_reply("no")], mini=[text_reply("42")])
    agent = _agent(models, TierMiddleware(CONFIG, models=models, verifier=_says_42))
    streamed = [(chunk.text, meta["tierflow_tier"]) async for chunk, meta in agent.astream(
        {"messages": [("user", "x?")]}, stream_mode="messages") if chunk.text]  # fmt: skip
    assert streamed == [("no", "nano"), ("42", "mini")]  # the rejected reply is marked nano
