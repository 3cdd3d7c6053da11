"""A real llama.cpp server: forced tool calls and structured output through ChatOpenAI.

Token usage that LangChain reports must equal what the server reports for the same request.
ChatOpenAI sends ``max_tokens`` as ``max_completion_tokens``, which llama-cpp-python 0.3.x
ignores; ``extra_body`` repeats it under the name the server reads.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

pytestmark = pytest.mark.integration

SEED, MAX_TOKENS = 7, 48
SAMPLING: dict[str, Any] = {"temperature": 0, "seed": SEED, "max_tokens": MAX_TOKENS}


class CapitalFact(BaseModel):
    """A capital city and its country."""

    city: str = Field(description="the capital city")
    country: str = Field(description="the country it is the capital of")


@tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"sunny in {city}"


def _chat(base_url: str, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=base_url,
        api_key="x",
        model=model,
        timeout=120,
        max_retries=0,
        extra_body={"max_tokens": MAX_TOKENS},
        **SAMPLING,
    )


def _direct(
    base_url: str, model: str, messages: list[dict[str, str]], tool_spec: dict | None = None
) -> Any:
    client = openai.OpenAI(base_url=base_url, api_key="x", timeout=120, max_retries=0)
    tools: dict[str, Any] = {}
    if tool_spec:
        name = tool_spec["function"]["name"]
        tools = {
            "tools": [tool_spec],
            "tool_choice": {"type": "function", "function": {"name": name}},
        }
    return client.chat.completions.create(model=model, messages=messages, **tools, **SAMPLING)


def _assert_same_usage(raw: AIMessage, direct: Any) -> None:
    usage = raw.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["input_tokens"] == direct.usage.prompt_tokens
    assert usage["output_tokens"] == direct.usage.completion_tokens


@pytest.fixture(scope="module")
def alias(llama_nano: str) -> str:
    models = openai.OpenAI(base_url=llama_nano, api_key="x", timeout=30).models.list()
    return models.data[0].id


def test_structured_output_by_forced_function_call(llama_nano: str, alias: str) -> None:
    messages = [
        {"role": "system", "content": "Extract the fact the user states."},
        {"role": "user", "content": "Paris is the capital of France."},
    ]
    chain = _chat(llama_nano, alias).with_structured_output(
        CapitalFact, method="function_calling", include_raw=True
    )
    out = chain.invoke(messages)

    assert out["parsing_error"] is None
    fact = CapitalFact.model_validate(out["parsed"].model_dump())
    assert "paris" in fact.city.lower()
    direct = _direct(llama_nano, alias, messages, convert_to_openai_tool(CapitalFact))
    _assert_same_usage(out["raw"], direct)
    args = json.loads(direct.choices[0].message.tool_calls[0].function.arguments)
    assert CapitalFact.model_validate(args) == fact


def test_bind_tools_with_forced_tool_choice(llama_nano: str, alias: str) -> None:
    messages = [{"role": "user", "content": "What's the weather like in Lisbon right now?"}]
    model = _chat(llama_nano, alias).bind_tools([get_weather], tool_choice="get_weather")
    ai = model.invoke(messages)

    assert isinstance(ai, AIMessage)
    assert [c["name"] for c in ai.tool_calls] == ["get_weather"]
    args = get_weather.args_schema.model_validate(ai.tool_calls[0]["args"])
    assert args.city
    direct = _direct(llama_nano, alias, messages, convert_to_openai_tool(get_weather))
    _assert_same_usage(ai, direct)
    assert json.loads(direct.choices[0].message.tool_calls[0].function.arguments) == dict(args)


def test_plain_answer_is_capped_at_max_tokens(llama_nano: str, alias: str) -> None:
    messages = [{"role": "user", "content": "Write a long poem about the sea."}]
    ai = _chat(llama_nano, alias).invoke(messages)

    direct = _direct(llama_nano, alias, messages)
    _assert_same_usage(ai, direct)
    # Texts may differ after a few tokens: llama.cpp reuses the cached prompt prefix, and
    # the different batch split changes logits slightly even at temperature 0.
    assert ai.usage_metadata["output_tokens"] == MAX_TOKENS
