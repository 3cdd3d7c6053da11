"""llama-cpp-python's OpenAI-compatible server, with the repairs tierflow's local tiers need.

Run as ``python -m tierflow.local.llama_server <llama_cpp.server arguments>`` (that is what
``tierflow local up`` starts). It is llama-cpp-python's own server with:

1. **A prompt cache whose size limit holds** (:class:`BoundedRAMCache`). llama-cpp-python's
   ``LlamaRAMCache`` keeps, with each saved state, a copy of the logits buffer (up to
   ``n_batch`` x vocabulary floats: 311 MB on Qwen2.5) that its size limit does not count;
   a bench run with it had a server OOM-killed at 13.9 GB. Sampling reads the logits from the
   llama.cpp context (restored with the state), so only the last row is kept, and the limit
   counts everything kept. With it, tasks that alternate on one server each find their own
   prefix again instead of re-evaluating their whole prompt.
2. **Work nobody waits for stops** (:class:`AbandonWatch`). The server computes a
   non-streamed request to the end even when the client has timed out and gone, so the
   client's retry queues behind it. The middleware notices the disconnect and the evaluation
   loop stops at the next batch of prompt tokens or the next generated token; the tokens
   evaluated so far stay in the context, so the retry reuses them as a prefix.
3. **Native tool calling in the model's own format** (:func:`native_tool_calls`). With
   ``tool_choice="auto"``, ``chatml-function-calling`` first picks ``message:`` or
   ``functions.<name>:`` under a grammar, and on ``message:`` decodes the reply under the
   grammar of a *next function name*: the reply can only be ``functions.<name>:`` as text,
   with no call (0 of 4 BFCL requests on Qwen2.5-Coder 0.5B came back as calls; freed of that
   grammar, it still picked ``message:`` and wrote the calls as text). When the model's own
   chat template declares tools (Qwen2.5: ``<tools>`` in the system turn, ``<tool_call>`` JSON
   in the reply, the format it was trained on), an ``auto`` request is rendered with that
   template and the calls in the reply (``<tool_call>`` blocks, or the bare or fenced call
   objects this model also writes) become the response's tool calls.
   Forced calls (a named ``tool_choice``) keep ``chatml-function-calling``'s grammar.
4. **Cached prompt tokens reported** (:mod:`tierflow.local._prompt_reuse`): each answer's
   ``usage.prompt_tokens_details.cached_tokens`` is the part of its prompt llama.cpp found in
   its context or prompt cache and did not evaluate, so records price it at the cached rate.
5. **Token log-probabilities without ``logits_all``** (:mod:`tierflow.local._logprobs`): a
   request with ``logprobs: true`` (``top_logprobs`` k optional) gets OpenAI's
   ``choices[0].logprobs.content`` from the last-position logits sampling computes anyway; the
   server runs with ``--logits_all False`` unless told otherwise (llama-cpp-python's server
   defaults to True: a logits row per prompt token, the output layer run on every one).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import re
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np
from jinja2.sandbox import ImmutableSandboxedEnvironment
from llama_cpp import llama_chat_format
from llama_cpp.llama_cache import LlamaRAMCache

from tierflow.local._logprobs import logprob_chat_completion, logprob_completion, recorded_sample
from tierflow.local._prompt_reuse import metered_chat_completion, metered_eval, metered_generate

__all__ = [
    "BoundedRAMCache", "AbandonWatch", "RequestAbandoned", "native_tool_calls", "read_tool_calls",
    "keep_usage_details", "patch_llama", "main",
]  # fmt: skip

_ABANDONED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "tierflow_abandoned", default=None
)


class RequestAbandoned(RuntimeError):
    """The client of the request being computed has disconnected."""


class BoundedRAMCache(LlamaRAMCache):
    """LlamaRAMCache that keeps one row of logits per state and counts it in its size."""

    @property
    def cache_size(self) -> int:
        """Bytes kept: the llama.cpp states and the logits rows beside them."""
        return sum(s.llama_state_size + s.scores.nbytes for s in self.cache_state.values())

    def __setitem__(self, key: Sequence[int], value: Any) -> None:
        scores = value.scores
        # load_state broadcasts this row over the rows it restores; nothing samples from them.
        value.scores = (
            scores[-1:].copy() if len(scores) else np.zeros((1, scores.shape[1]), np.single)
        )
        super().__setitem__(key, value)


class AbandonWatch:
    """ASGI middleware: marks a POST abandoned when its client disconnects before the answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI request, watching for its client's disconnect."""
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body: list[dict[str, Any]] = []
        while True:  # read the whole request first, so the watcher may own `receive`
            message = await receive()
            body.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        gone, replay = threading.Event(), list(body)
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            disconnected.set()

        async def replay_receive() -> dict[str, Any]:
            if replay:
                return replay.pop(0)
            await disconnected.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.create_task(watch())
        token = _ABANDONED.set(gone)
        try:
            await self.app(scope, replay_receive, send)
        finally:
            _ABANDONED.reset(token)
            watcher.cancel()


def _checked_eval(original: Any) -> Any:
    def evaluate(self: llama_cpp.Llama, tokens: Sequence[int]) -> None:
        gone = _ABANDONED.get()
        if gone is None:
            return original(self, tokens)
        step = max(1, int(self.n_batch))
        for i in range(0, len(tokens), step):  # one batch at a time, checking in between
            if gone.is_set():
                print(
                    f"tierflow: client gone; stopped after {self.n_tokens} evaluated tokens",
                    file=sys.stderr,
                    flush=True,
                )
                raise RequestAbandoned("the client disconnected")
            original(self, tokens[i : i + step])
        return None

    return evaluate


_LEFTOVER = re.compile(r"</?tool_call>|```(?:json)?\s*```", re.IGNORECASE)


def read_tool_calls(text: str, names: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """The reply's words and the calls in it, as OpenAI tool calls.

    A call is a JSON object ``{"name": <an offered function>, "arguments": {...}}`` (or a list
    of them), inside ``<tool_call>`` tags as the template asks or, as Qwen2.5-Coder 0.5B writes
    it 4 times in 4, bare or in a ```json fence. Anything else stays in the words: the client
    sees what the model wrote instead of a call that was never made.
    """
    decoder, calls, spans, at = json.JSONDecoder(), [], [], 0
    while (at := _next_json(text, at)) >= 0:
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        found = [v for v in (value if isinstance(value, list) else [value]) if _is_call(v, names)]
        if found:
            calls += found
            spans.append((at, end))
        at = end if found else at + 1
    words = text
    for start, end in reversed(spans):
        words = words[:start] + words[end:]
    tool_calls = [
        {"id": f"call_{i}_{uuid.uuid4().hex[:8]}", "type": "function",
         "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
        for i, c in enumerate(calls)
    ]  # fmt: skip
    return (_LEFTOVER.sub("", words).strip() if spans else words.strip()) or None, tool_calls


def _next_json(text: str, start: int) -> int:
    found = [i for i in (text.find("{", start), text.find("[", start)) if i >= 0]
    return min(found) if found else -1


def _is_call(value: Any, names: set[str]) -> bool:
    return (
        isinstance(value, dict) and value.get("name") in names
        and isinstance(value.get("arguments", {}), dict)
    )  # fmt: skip


def native_tool_calls(fallback: Any) -> Any:
    """Chat handler: ``auto`` tool requests in the model's own tool format, else ``fallback``."""

    def handler(*, llama: llama_cpp.Llama, **request: Any) -> Any:
        template = llama.metadata.get("tokenizer.chat_template", "")
        tools, choice = request.get("tools"), request.get("tool_choice")
        if (
            not tools
            or choice not in (None, "auto")
            or request.get("stream")
            or ("<tool_call>" not in template)
        ):
            return fallback(llama=llama, **request)
        prompt = _compiled(template).render(
            messages=request["messages"], tools=tools, add_generation_prompt=True
        )
        stop = request.get("stop") or []
        done: Any = llama.create_completion(  # not streamed: one response
            prompt=prompt, stop=[*([stop] if isinstance(stop, str) else stop), "<|im_end|>"],
            max_tokens=request.get("max_tokens"),  # None: to the end of the context
            logprobs=(request.get("top_logprobs") or 0) if request.get("logprobs") else None,
            **{k: request[k] for k in _SAMPLING if request.get(k) is not None},
        )  # fmt: skip
        names = {t["function"]["name"] for t in tools if t.get("type") == "function"}
        words, calls = read_tool_calls(done["choices"][0]["text"], names)
        message: dict[str, Any] = {"role": "assistant", "content": words}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": "chat" + done["id"], "object": "chat.completion", "created": done["created"],
            "model": done["model"], "usage": done["usage"],
            "choices": [{"index": 0, "message": message, "logprobs": _chat_logprobs(done),
                         "finish_reason": "tool_calls" if calls else "stop"}],
        }  # fmt: skip

    return handler


def _chat_logprobs(done: Any) -> Any:
    """The completion's logprobs (of the whole reply, calls included) in the chat shape."""
    convert = llama_chat_format._convert_text_completion_logprobs_to_chat
    return convert(done["choices"][0].get("logprobs"))


@functools.lru_cache(maxsize=4)
def _compiled(template: str) -> Any:
    """The chat template, compiled once per model rather than on every request."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = _tojson  # as Hugging Face renders templates: no HTML escapes
    return env.from_string(template)


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


_SAMPLING = (
    "temperature", "top_p", "top_k", "min_p", "typical_p", "seed",
    "presence_penalty", "frequency_penalty", "repeat_penalty", "model",
)  # fmt: skip


def keep_usage_details() -> None:
    """Let ``usage.prompt_tokens_details`` through the server's response model.

    The server validates each answer against llama-cpp-python's TypedDicts, and pydantic drops
    keys a TypedDict does not declare; ``CompletionUsage`` declares only the three counts.
    Must run before ``llama_cpp.server.app`` is imported (its routes build their validators).
    """
    llama_cpp.llama_types.CompletionUsage.__pydantic_config__ = {"extra": "allow"}  # type: ignore[attr-defined]


def patch_llama() -> None:
    """Install the repairs above on ``llama_cpp.Llama`` and the chat handler registry."""
    llama_cpp.LlamaRAMCache = BoundedRAMCache  # type: ignore[misc]  # what model.py builds
    llama = llama_cpp.Llama
    llama.eval = metered_eval(_checked_eval(llama.eval))  # type: ignore[method-assign]
    llama.generate = metered_generate(llama.generate)  # type: ignore[method-assign]
    llama.sample = recorded_sample(llama.sample)  # type: ignore[method-assign]
    llama.create_completion = logprob_completion(llama.create_completion)  # type: ignore[method-assign]
    chat = logprob_chat_completion(metered_chat_completion(llama.create_chat_completion))
    llama.create_chat_completion = chat  # type: ignore[method-assign]
    registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()
    fallback = registry.get_chat_completion_handler_by_name("chatml-function-calling")
    registry.register_chat_completion_handler(
        "chatml-function-calling", native_tool_calls(fallback), overwrite=True
    )


def main() -> None:
    """Start llama-cpp-python's server with the repairs above."""
    keep_usage_details()
    if not any(a.split("=")[0] == "--logits_all" for a in sys.argv[1:]):
        sys.argv += ["--logits_all", "False"]  # logprobs come from _logprobs instead
    import llama_cpp.server.app as server_app
    from llama_cpp.server.__main__ import main as serve

    patch_llama()
    create_app = server_app.create_app

    def create_watched_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.add_middleware(AbandonWatch)
        return app

    import llama_cpp.server.__main__ as entry

    entry.create_app = create_watched_app  # type: ignore[assignment]
    serve()


if __name__ == "__main__":
    main()
