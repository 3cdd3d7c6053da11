"""Token log-probabilities from tierflow's llama server, read by tierflow.trust.

The server runs without ``logits_all`` and records the chosen tokens' log-probabilities while
sampling (tierflow.local._logprobs); a ChatOpenAI request bound with ``logprobs`` gets them in
``response_metadata`` as from OpenAI, for a plain answer and for a forced (grammar) tool call.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tierflow.trust import call_confidence, letter_confidence, token_logprobs

pytestmark = pytest.mark.integration

ASK = "Answer the multiple-choice question. Reply with the letter of the right choice only."
QUESTION = (
    "Subject: geography\nQuestion: What is the capital of France?\n"
    "A. Berlin\nB. Madrid\nC. Paris\nD. Rome\nAnswer:"
)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "the weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}  # fmt: skip


def _model(base_url: str, **bound: object) -> object:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    llm = ChatOpenAI(model="x", base_url=base_url, api_key=SecretStr("x"), timeout=300,
                     max_retries=0, temperature=0, extra_body={"max_tokens": 24})  # fmt: skip
    return llm.bind(**bound) if bound else llm


def test_logprobs_come_with_the_answer(nano_server: tuple[str, Path]) -> None:
    base_url, _ = nano_server
    asked = [("system", ASK), ("human", QUESTION)]
    message = _model(base_url, logprobs=True, top_logprobs=5).invoke(asked)  # type: ignore[attr-defined]
    tokens = token_logprobs(message)
    assert tokens and "".join(t.token for t in tokens).strip() == str(message.content).strip()
    assert all(t.logprob <= 0 and len(t.top) >= 1 for t in tokens)
    letter = letter_confidence(message)
    assert letter is not None and 0 < letter <= 1
    plain = _model(base_url).invoke(asked)  # type: ignore[attr-defined]
    assert not plain.response_metadata.get("logprobs")  # not asked: none computed


def test_a_forced_call_carries_the_logprobs_of_its_arguments(
    nano_server: tuple[str, Path],
) -> None:
    base_url, _ = nano_server
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    llm = ChatOpenAI(model="x", base_url=base_url, api_key=SecretStr("x"), timeout=300,
                     max_retries=0, temperature=0, extra_body={"max_tokens": 40})  # fmt: skip
    bound = llm.bind_tools([WEATHER], tool_choice="get_weather").bind(logprobs=True)
    message = bound.invoke("What's the weather in Paris?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
    confidence = call_confidence(message)
    assert confidence is not None and 0 < confidence <= 1 and not math.isnan(confidence)
