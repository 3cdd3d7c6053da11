"""Test doubles shipped with the package: a scripted chat model that supports tools and streaming.

Example:
    >>> from tierflow.testing import ScriptedChatModel, tool_reply
    >>> m = ScriptedChatModel(script=[tool_reply("Route", {"to": "mini"})])
    >>> m.bind_tools([{"type": "function", "function": {"name": "Route", "parameters": {}}}],
    ...              tool_choice="Route").invoke("hi").tool_calls[0]["args"]
    {'to': 'mini'}
    >>> m.assert_complete()
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

# The reply builders and the scratch checkpointers live in their own modules; this is where
# tests and benchmarks import them from.
from tierflow._checkpointers import (
    CHECKPOINTER_KINDS,
    free_port,
    postgres_bin,
    postgres_server,
    scratch_checkpointer,
)
from tierflow._replies import (
    answer_now,
    delegate,
    final_answer,
    result,
    text_reply,
    tool_reply,
)

__all__ = [
    "ScriptedChatModel",
    "Rule",
    "Request",
    "tool_reply",
    "text_reply",
    "TransientError",
    "delegate",
    "answer_now",
    "result",
    "final_answer",
    "CHECKPOINTER_KINDS",
    "free_port",
    "postgres_bin",
    "postgres_server",
    "scratch_checkpointer",
]


class TransientError(ConnectionError):
    """A stand-in for a network blip or a 5xx: the engine retries it."""


@dataclass(frozen=True)
class Rule:
    """A scripted reply used only for requests that ``match`` accepts (for parallel branches)."""

    match: Callable[[list[BaseMessage]], bool]
    reply: AIMessage | BaseException | Callable[[list[BaseMessage]], AIMessage]


@dataclass
class Request:
    """What the model was asked: messages plus the tools and tool choice bound to it."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    max_tokens: int | None = None
    temperature: float | None = None  # a request's own sampling temperature (e.g. a verifier's)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def tool_names(self) -> list[str]:
        """Names of the bound tools."""
        return [t["function"]["name"] for t in self.tools]


Step = AIMessage | BaseException | Rule | Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """Replies from a script, records every request, and checks the script was used up.

    Script entries are consumed in order; a :class:`Rule` entry is consumed by the first
    request it matches, which keeps parallel branches deterministic. An exception entry is
    raised. Replies without ``usage_metadata`` get approximate token counts.

    Args:
        script: the replies.
        delay_s: simulated latency per request (async requests sleep without blocking).
        label: a label shown in errors and recorded as the model name.
        spend_max_tokens: report exactly the request's ``max_tokens`` as output tokens (the
            worst case a budget must pay). Otherwise scripted output counts are capped at
            ``max_tokens``, as a real server caps them.
    """

    script: list[Any]
    delay_s: float = 0.0
    label: str = "scripted"
    spend_max_tokens: bool = False

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _remaining: list[Any] = PrivateAttr(default_factory=list)
    _requests: list[Request] = PrivateAttr(default_factory=list)

    def model_post_init(self, __context: Any) -> None:  # noqa: D102
        self._remaining = list(self.script)

    @property
    def _llm_type(self) -> str:
        return "tierflow-scripted"

    @property
    def model_name(self) -> str:
        """Name reported in usage records."""
        return self.label

    @property
    def requests(self) -> list[Request]:
        """Requests seen so far, in arrival order."""
        return list(self._requests)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        """Bind tools like ChatOpenAI does (OpenAI tool dicts)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def assert_complete(self) -> None:
        """Fail when scripted replies were never requested."""
        if self._remaining:
            raise AssertionError(
                f"{self.label}: {len(self._remaining)} scripted replies unused: {self._remaining!r}"
            )

    def _take(self, messages: list[BaseMessage]) -> Step:
        with self._lock:
            for i, step in enumerate(self._remaining):
                if isinstance(step, Rule):
                    if step.match(messages):
                        return self._remaining.pop(i).reply
                    continue
                return self._remaining.pop(i)
            raise AssertionError(
                f"{self.label}: no scripted reply left for request #{len(self._requests) + 1}; "
                f"last message: {messages[-1].content!r}"
            )

    def _reply(
        self, messages: list[BaseMessage], kwargs: dict[str, Any], started: float
    ) -> ChatResult:
        step = self._take(messages)
        self._requests.append(
            Request(
                messages=list(messages),
                tools=list(kwargs.get("tools") or []),
                tool_choice=kwargs.get("tool_choice"),
                max_tokens=kwargs.get("max_tokens"),
                temperature=kwargs.get("temperature"),
                started_at=started,
                finished_at=time.monotonic(),
            )
        )
        if isinstance(step, BaseException):
            raise step
        reply = step(messages) if callable(step) else step
        assert isinstance(reply, AIMessage), f"{self.label}: script entries must be AIMessages"
        msg = reply.model_copy(deep=True)
        if msg.usage_metadata is None:
            inp = count_tokens_approximately(messages)
            out = max(1, len(str(msg.content) + str(msg.tool_calls)) // 4)
            msg.usage_metadata = {
                "input_tokens": inp,
                "output_tokens": out,
                "total_tokens": inp + out,
            }
        cap = kwargs.get("max_tokens")
        if cap is not None:
            usage = dict(msg.usage_metadata)
            out = cap if self.spend_max_tokens else min(usage["output_tokens"], cap)
            usage.update(output_tokens=out, total_tokens=usage["input_tokens"] + out)
            msg.usage_metadata = usage  # type: ignore[assignment]
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.monotonic()
        if self.delay_s:
            time.sleep(self.delay_s)
        return self._reply(messages, kwargs, started)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.monotonic()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._reply(messages, kwargs, started)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop, run_manager, **kwargs)
        yield _as_chunk(result.generations[0].message)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        result = await self._agenerate(messages, stop, run_manager, **kwargs)
        yield _as_chunk(result.generations[0].message)


def _as_chunk(msg: BaseMessage) -> ChatGenerationChunk:
    assert isinstance(msg, AIMessage)
    chunk = AIMessageChunk(
        content=msg.content,
        tool_call_chunks=[
            {"name": tc["name"], "args": _json(tc["args"]), "id": tc["id"], "index": i}
            for i, tc in enumerate(msg.tool_calls)
        ],
        usage_metadata=msg.usage_metadata,
        id=msg.id,
    )
    return ChatGenerationChunk(message=chunk)


def _json(value: Any) -> str:
    return json.dumps(value)
