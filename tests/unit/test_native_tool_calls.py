"""Native tool calls on the local server: the model's own tool format, read into tool calls.

``tierflow.local.llama_server.native_tool_calls`` renders an ``auto`` tool request with the
model's chat template and reads the calls out of the reply; everything else goes to the
handler it wraps. The model here is a fake that records the prompt it was sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tierflow.local.llama_server import native_tool_calls, read_tool_calls

NAMES = {"math_factorial", "area"}
TEMPLATE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>{% endif %}"
    "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %} <tool_call> format"
)
TOOLS = [{"type": "function", "function": {"name": "math_factorial", "description": "n's",
          "parameters": {"type": "object", "properties": {"number": {"type": "integer"}}}}}]  # fmt: skip


def _args(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


def test_calls_in_tool_call_tags_are_read() -> None:
    text = '<tool_call>\n{"name": "math_factorial", "arguments": {"number": 5}}\n</tool_call>'
    words, calls = read_tool_calls(text, NAMES)
    assert words is None
    assert _args(calls) == [("math_factorial", {"number": 5})]
    assert calls[0]["type"] == "function" and calls[0]["id"].startswith("call_0_")


def test_bare_fenced_and_listed_calls_are_read_in_order() -> None:
    text = (
        '```json\n[{"name": "area", "arguments": {"r": 2}}, '
        '{"name": "math_factorial", "arguments": {"number": 3}}]\n```\n'
        'and {"name": "area", "arguments": {"r": 7}}'
    )
    words, calls = read_tool_calls(text, NAMES)
    assert _args(calls) == [
        ("area", {"r": 2}), ("math_factorial", {"number": 3}), ("area", {"r": 7}),
    ]  # fmt: skip
    assert words == "and"


def test_what_is_not_a_call_of_an_offered_function_stays_words() -> None:
    for text in (
        'Use {"name": "delete_all", "arguments": {}} instead',  # not offered
        '{"name": "area", "arguments": "r=2"}',  # arguments not an object
        "The factorial of 5 is 120.",
        'broken {"name": "area", "arguments": {',
    ):
        words, calls = read_tool_calls(text, NAMES)
        assert calls == [] and words == text.strip(), text


class FakeLlama:
    def __init__(self, reply: str) -> None:
        self.metadata = {"tokenizer.chat_template": TEMPLATE}
        self.reply = reply
        self.sent: list[dict[str, Any]] = []

    def create_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"id": "cmpl-1", "created": 1, "model": "m",
                "choices": [{"text": self.reply}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}  # fmt: skip


def _fallback(**request: Any) -> str:
    return "fallback"


def test_an_auto_request_is_rendered_with_the_models_template_and_read() -> None:
    llama = FakeLlama('{"name": "math_factorial", "arguments": {"number": 5}}')
    handler = native_tool_calls(_fallback)
    out = handler(llama=llama, messages=[{"role": "user", "content": "5!?"}], tools=TOOLS,
                  tool_choice="auto", temperature=0.0, max_tokens=None, stop=None)  # fmt: skip
    (sent,) = llama.sent
    assert sent["prompt"].startswith("<tools>") and "[user] 5!?[assistant]" in sent["prompt"]
    assert '"description": "n\'s"' in sent["prompt"]  # no HTML escapes in the tool JSON
    assert sent["temperature"] == 0.0 and sent["max_tokens"] is None
    assert sent["stop"] == ["<|im_end|>"]
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert _args(choice["message"]["tool_calls"]) == [("math_factorial", {"number": 5})]
    assert out["usage"]["total_tokens"] == 13


def test_a_reply_in_words_is_a_message_without_calls() -> None:
    llama = FakeLlama("No function computes the weather.")
    out = native_tool_calls(_fallback)(
        llama=llama, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS,
        tool_choice="auto",
    )  # fmt: skip
    choice = out["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant",
                                 "content": "No function computes the weather."}  # fmt: skip


@pytest.mark.parametrize(
    "request_",
    [
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "f"}}},
        {"tools": None, "tool_choice": None},
        {"tools": TOOLS, "tool_choice": "auto", "stream": True},
    ],
    ids=["forced call", "no tools", "streamed"],
)
def test_forced_untooled_and_streamed_requests_go_to_the_wrapped_handler(
    request_: dict[str, Any],
) -> None:
    llama = FakeLlama("")
    assert native_tool_calls(_fallback)(llama=llama, messages=[], **request_) == "fallback"
    assert llama.sent == []


def test_a_template_without_a_tool_format_goes_to_the_wrapped_handler() -> None:
    llama = FakeLlama("")
    llama.metadata["tokenizer.chat_template"] = "{% for m in messages %}{{ m.content }}{% endfor %}"
    out = native_tool_calls(_fallback)(llama=llama, messages=[], tools=TOOLS, tool_choice="auto")
    assert out == "fallback" and llama.sent == []
