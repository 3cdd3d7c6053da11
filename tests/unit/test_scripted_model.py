"""The scripted chat model every unit test relies on: script use, recording, rules, streaming."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from tierflow.testing import Rule, ScriptedChatModel, TransientError, text_reply, tool_reply

ROUTE = {
    "type": "function",
    "function": {
        "name": "Route",
        "description": "Pick a tier.",
        "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
    },
}


class Route(BaseModel):
    """Pick a tier."""

    to: str


def about(word: str):
    return lambda messages: word in str(messages[-1].content)


def test_replies_in_order_and_checks_completion() -> None:
    model = ScriptedChatModel(script=[text_reply("one"), text_reply("two")], label="m")

    assert model.invoke("a").content == "one"
    with pytest.raises(AssertionError, match=r"m: 1 scripted replies unused"):
        model.assert_complete()
    assert model.invoke("b").content == "two"
    model.assert_complete()
    assert len(model.script) == 2  # the declared script is not consumed


def test_running_out_of_replies_names_the_request() -> None:
    model = ScriptedChatModel(script=[], label="empty")

    with pytest.raises(
        AssertionError,
        match=r"empty: no scripted reply left for request #1; "
        r"last message: 'hello'",
    ):
        model.invoke("hello")


def test_records_messages_tools_and_tool_choice() -> None:
    model = ScriptedChatModel(script=[tool_reply("Route", {"to": "mini"}), text_reply("plain")])

    msg = model.bind_tools([ROUTE], tool_choice="Route").invoke([HumanMessage("route me")])
    model.invoke("no tools")

    assert msg.tool_calls[0]["args"] == {"to": "mini"}
    bound, plain = model.requests
    assert bound.tool_names == ["Route"] and bound.tool_choice == "Route"
    assert bound.messages[0].content == "route me"
    assert plain.tools == [] and plain.tool_choice is None
    assert bound.started_at <= bound.finished_at <= plain.started_at


def test_pydantic_tools_are_converted() -> None:
    model = ScriptedChatModel(script=[tool_reply("Route", {"to": "nano"})])

    model.bind_tools([Route], tool_choice="any").invoke("x")

    (request,) = model.requests
    assert request.tools[0]["function"]["parameters"]["required"] == ["to"]
    assert request.tool_choice == "any"


def test_structured_output_through_tool_calling() -> None:
    model = ScriptedChatModel(script=[tool_reply("Route", {"to": "flagship"})])

    assert model.with_structured_output(Route).invoke("x") == Route(to="flagship")


def test_usage_given_or_approximated() -> None:
    model = ScriptedChatModel(script=[text_reply("x", usage=(100, 20, 30)), text_reply("y" * 40)])

    given = model.invoke("a").usage_metadata
    approx = model.invoke("b").usage_metadata

    assert given["input_tokens"] == 100 and given["output_tokens"] == 20
    assert given["input_token_details"] == {"cache_read": 30}
    assert approx["input_tokens"] > 0 and approx["output_tokens"] >= 10


def test_replies_are_copies() -> None:
    reply = text_reply("same")
    model = ScriptedChatModel(script=[reply, reply])

    first = model.invoke("a")
    first.content = "changed"

    assert model.invoke("b").content == "same"


def test_exceptions_are_raised_and_recorded() -> None:
    model = ScriptedChatModel(script=[TransientError("blip"), text_reply("ok")])

    with pytest.raises(TransientError, match="blip"):
        model.invoke("a")

    assert model.invoke("b").content == "ok"
    assert len(model.requests) == 2
    assert isinstance(TransientError("x"), ConnectionError)


def test_callable_step_sees_the_messages() -> None:
    model = ScriptedChatModel(script=[lambda msgs: AIMessage(f"echo {msgs[-1].content}")])

    assert model.invoke("hi").content == "echo hi"


def test_rules_match_requests_out_of_order() -> None:
    model = ScriptedChatModel(
        script=[
            Rule(about("alpha"), text_reply("A")),
            Rule(about("beta"), text_reply("B")),
            text_reply("plain"),
        ]
    )

    assert model.invoke("beta please").content == "B"
    assert model.invoke("anything").content == "plain"  # unmatched rules are skipped
    assert model.invoke("alpha please").content == "A"
    model.assert_complete()


def test_a_rule_is_used_once() -> None:
    model = ScriptedChatModel(script=[Rule(about("alpha"), text_reply("A"))], label="r")

    model.invoke("alpha")

    with pytest.raises(AssertionError, match="no scripted reply left"):
        model.invoke("alpha again")


def test_rule_reply_may_be_an_exception() -> None:
    model = ScriptedChatModel(script=[Rule(about("bad"), ValueError("nope"))])

    with pytest.raises(ValueError, match="nope"):
        model.invoke("bad request")


def test_streaming_yields_tool_call_chunks() -> None:
    model = ScriptedChatModel(script=[tool_reply("Route", {"to": "mini"}, usage=(5, 3))])

    chunks = list(model.bind_tools([ROUTE], tool_choice="Route").stream("x"))

    assert chunks[0].tool_call_chunks[0]["name"] == "Route"
    assert chunks[0].tool_call_chunks[0]["args"] == '{"to": "mini"}'
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.tool_calls[0]["args"] == {"to": "mini"}
    assert merged.usage_metadata["input_tokens"] == 5


async def test_async_streaming_and_concurrent_delay() -> None:
    model = ScriptedChatModel(script=[text_reply("a"), text_reply("b")], delay_s=0.2)

    async def first_chunk(prompt: str) -> str:
        async for chunk in model.astream(prompt):
            return str(chunk.content)
        return ""

    texts = await asyncio.gather(first_chunk("1"), first_chunk("2"))

    assert sorted(texts) == ["a", "b"]
    starts = [r.started_at for r in model.requests]
    finishes = [r.finished_at for r in model.requests]
    assert max(starts) < min(finishes)  # async delays overlap instead of queueing
