"""Cached prompt tokens on the local server, counted without a model.

``tierflow.local._prompt_reuse`` wraps ``Llama.generate``, ``Llama.eval`` and
``Llama.create_chat_completion``; here they wrap a stand-in that keeps its context the way
llama-cpp-python does (the common prefix stays, the rest is evaluated, a fully cached prompt
replays its last token), so the figures are what llama.cpp would report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tierflow.local._prompt_reuse import (
    cached_tokens,
    metered_chat_completion,
    metered_eval,
    metered_generate,
)


class FakeLlama:
    """A context of token ids; ``generate`` reuses the longest common prefix, as llama.cpp."""

    def __init__(self) -> None:
        self.input_ids: list[int] = []
        self.evaluated: list[int] = []  # tokens per eval call, as llama.cpp's timings count

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    def eval(self, tokens: Sequence[int]) -> None:
        self.input_ids += list(tokens)
        self.evaluated.append(len(tokens))

    def generate(self, tokens: Sequence[int]) -> Iterator[int]:
        tokens = list(tokens)
        prefix = 0
        for a, b in zip(self.input_ids, tokens, strict=False):
            if a != b:
                break
            prefix += 1
        if prefix == len(tokens):
            prefix -= 1  # no suffix left: replay one token to refresh the logits
        del self.input_ids[prefix:]
        self.eval(tokens[prefix:])
        for token in (900, 901):  # two generated tokens, each evaluated in turn
            yield token
            self.eval([token])

    def create_completion(self, prompt: Sequence[int]) -> dict[str, Any]:
        out = list(self.generate(prompt))
        return {"usage": {"prompt_tokens": len(prompt), "completion_tokens": len(out),
                          "total_tokens": len(prompt) + len(out)}}  # fmt: skip

    def create_chat_completion(self, prompts: Sequence[Sequence[int]], stream: bool = False) -> Any:
        """One completion per prompt (a handler's picks), reporting the last one's usage."""
        if stream:
            return iter([{"choices": []}])
        answer: dict[str, Any] = {}
        for prompt in prompts:
            answer = self.create_completion(prompt)
        return answer


class MeteredLlama(FakeLlama):
    eval = metered_eval(FakeLlama.eval)  # type: ignore[assignment]
    generate = metered_generate(FakeLlama.generate)  # type: ignore[assignment]
    create_chat_completion = metered_chat_completion(FakeLlama.create_chat_completion)


SYSTEM = list(range(100))


def _cached(answer: dict[str, Any]) -> int:
    return answer["usage"]["prompt_tokens_details"]["cached_tokens"]


def test_cached_tokens_are_the_prompt_tokens_llama_cpp_did_not_evaluate() -> None:
    llama = MeteredLlama()
    first = llama.create_chat_completion([[*SYSTEM, 1, 2, 3]])
    assert _cached(first) == 0 and first["usage"]["prompt_tokens"] == 103
    # The next turn shares the system prompt and the first question.
    second = llama.create_chat_completion([[*SYSTEM, 1, 2, 3, 7, 8]])
    assert llama.evaluated[-3] == 2  # the new tokens, then the two generated ones
    assert _cached(second) == 103
    # The same prompt again: all but the replayed last token come from the context.
    again = llama.create_chat_completion([[*SYSTEM, 1, 2, 3, 7, 8]])
    assert _cached(again) == 104
    # A different prompt: nothing in common after the first token.
    other = llama.create_chat_completion([[0, *range(500, 550)]])
    assert _cached(other) == 1


def test_every_completion_of_one_request_counts_its_evaluation() -> None:
    llama = MeteredLlama()
    llama.create_chat_completion([[*SYSTEM, 1]])
    # A handler first picks "message" on the prompt, then answers on prompt + "message:";
    # only the answer's usage is reported, but the pick's evaluation was this request's too.
    pick, answer = [*SYSTEM, 5, 6], [*SYSTEM, 5, 6, 40, 41]
    reply = llama.create_chat_completion([pick, answer])
    assert reply["usage"]["prompt_tokens"] == 104
    assert _cached(reply) == 104 - 2 - 2  # 5, 6 for the pick; 40, 41 for the answer


def test_a_streamed_answer_is_left_alone_and_no_meter_outlives_the_call() -> None:
    from tierflow.local import _prompt_reuse

    llama = MeteredLlama()
    chunks = list(llama.create_chat_completion([[1, 2, 3]], stream=True))
    assert chunks == [{"choices": []}]
    assert _prompt_reuse._METER.get() is None
    llama.create_completion([1, 2, 3])  # no request around it: nothing counted, nothing raised


def test_cached_tokens_stay_within_the_prompt() -> None:
    assert cached_tokens(100, 0) == 100
    assert cached_tokens(100, 130) == 0  # hidden completions evaluated more than reported
    assert cached_tokens(0, 0) == 0


# Run in a fresh interpreter: the server's routes build their validators when
# llama_cpp.server.app is imported, so keep_usage_details() must come first, as in main().
SERVE = """
import fastapi, json, sys
from fastapi.testclient import TestClient
from tierflow.local.llama_server import keep_usage_details
keep_usage_details()
import llama_cpp.server.app as server_app
from llama_cpp.server.settings import ServerSettings
from tests.unit.test_prompt_reuse import MeteredLlama

class ChatLlama(MeteredLlama):
    def create_chat_completion(self, messages, **kwargs):
        prompt = [ord(c) for m in messages for c in m["content"]]
        usage = super().create_chat_completion([prompt])["usage"]
        return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "logprobs": None, "finish_reason": "stop"}], "usage": usage}

llama = ChatLlama()
server_app.set_server_settings(ServerSettings())
server_app._llama_proxy = lambda model: llama
app = fastapi.FastAPI()
app.include_router(server_app.router)
client = TestClient(app)
for text in sys.argv[1:]:
    body = {"messages": [{"role": "user", "content": text}]}
    print(json.dumps(client.post("/v1/chat/completions", json=body).json()["usage"]))
"""


def test_the_server_s_answers_carry_cached_tokens() -> None:
    """Through llama-cpp-python's own route, whose response model drops undeclared keys."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("llama_cpp.server.app")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "hello there", "hello there, again"],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["prompt_tokens_details"] == {"cached_tokens": 0}
    assert (second["prompt_tokens"], second["prompt_tokens_details"]) == (
        18,
        {"cached_tokens": 11},
    )
