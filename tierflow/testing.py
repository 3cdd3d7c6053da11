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
import contextlib
import threading
import time
import uuid
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

from tierflow.protocol import ToolName

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


def tool_reply(
    name: str, args: dict[str, Any], *, usage: tuple[int, int] | tuple[int, int, int] | None = None
) -> AIMessage:
    """A reply that calls tool ``name``; ``usage`` is (input, output[, cached]) tokens."""
    msg = AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:8]}"}]
    )
    return _with_usage(msg, usage)


Usage = tuple[int, int] | tuple[int, int, int] | None


def delegate(*tasks: tuple[str, Any], plan: str = "delegate", usage: Usage = None) -> AIMessage:
    """A supervisor turn that delegates ``(subagent name, task)`` pairs (tasks: dict or model).

    With :func:`answer_now`, :func:`result` and :func:`final_answer`, a supervisor graph is
    scripted by what it decides and what its subagents return, not by tierflow's tool names:

    Example:
        >>> from tierflow.testing import ScriptedChatModel, delegate, answer_now, final_answer
        >>> flagship = ScriptedChatModel(label="flagship", script=[
        ...     delegate(("check", {"text": "claim"})), answer_now(), final_answer({"summary": "ok"})])
    """
    chosen = [{"subagent": name, "task": _plain(task)} for name, task in tasks]
    return tool_reply(
        ToolName.DECIDE.value, {"plan": plan, "delegate": chosen, "done": False}, usage=usage
    )


def answer_now(plan: str = "enough to answer", usage: Usage = None) -> AIMessage:
    """A supervisor turn that delegates nothing more: the final answer comes next."""
    return tool_reply(
        ToolName.DECIDE.value, {"plan": plan, "delegate": [], "done": True}, usage=usage
    )


def result(output: Any, *, forced: bool = False, usage: Usage = None) -> AIMessage:
    """A subagent step that finishes its task with ``output`` (forced: a local tier's form)."""
    if forced:
        step = {"step": {"action": ToolName.FINISH.value, "result": _plain(output)}}
        return tool_reply(ToolName.NEXT_ACTION.value, step, usage=usage)
    return tool_reply(ToolName.FINISH.value, _plain(output), usage=usage)


def final_answer(answer: Any, usage: Usage = None) -> AIMessage:
    """The supervisor's final answer (a dict or an instance of its answer schema)."""
    return tool_reply(ToolName.ANSWER.value, _plain(answer), usage=usage)


def _plain(value: Any) -> dict[str, Any]:
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def text_reply(
    text: str, *, usage: tuple[int, int] | tuple[int, int, int] | None = None
) -> AIMessage:
    """A plain text reply."""
    return _with_usage(AIMessage(content=text), usage)


def _with_usage(msg: AIMessage, usage: tuple[int, ...] | None) -> AIMessage:
    if usage is None:
        return msg
    inp, out, *rest = usage
    cached = rest[0] if rest else 0
    msg.usage_metadata = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {"cache_read": cached},
    }
    return msg


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
    import json

    return json.dumps(value)


# --- checkpointers for tests and benchmarks ---------------------------------------------------

CHECKPOINTER_KINDS = ("memory", "sqlite", "postgres")


def free_port() -> int:
    """A loopback TCP port that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    import os

    # initdb refuses to run as root: drop to the postgres user when we are root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def postgres_bin() -> str | None:
    """The newest Debian PostgreSQL server's bin folder, or None when it is not installed."""
    from glob import glob

    bins = sorted(glob("/usr/lib/postgresql/*/bin"))
    return bins[-1] if bins else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on a free loopback port, stopped (pg_ctl, then its PID) at exit.

    Yields the connection URL, with LangGraph's checkpoint tables set up. Needs the Debian
    ``postgresql`` package (``apt-get install -y postgresql``).
    """
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    pgbin = postgres_bin()
    if pgbin is None:
        raise RuntimeError(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin: apt-get install -y postgresql"
        )

    def pg(cmd: list[str]) -> None:
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)

    root = Path(tempfile.mkdtemp(prefix="tierflow-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    started = False
    try:
        pg([f"{pgbin}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-locale"])  # fmt: skip
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=on"
        pg([f"{pgbin}/pg_ctl", "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w",
            "start"])  # fmt: skip
        started = True
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
        yield url
    finally:
        if started:
            pid_file = data / "postmaster.pid"
            pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
            try:
                pg([f"{pgbin}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
            except (subprocess.SubprocessError, OSError):
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, 15)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def scratch_checkpointer(
    kind: str, workdir: Any = None, postgres_url: str | None = None
) -> AsyncIterator[Any]:
    """A fresh checkpointer of ``kind`` (one of :data:`CHECKPOINTER_KINDS`).

    ``memory``: InMemorySaver; ``sqlite``: AsyncSqliteSaver on a new file in ``workdir``;
    ``postgres``: AsyncPostgresSaver on ``postgres_url`` (e.g. from :func:`postgres_server`).
    """
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif kind == "sqlite":
        from pathlib import Path

        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        if workdir is None:
            raise ValueError("a sqlite checkpointer needs a workdir for its file")
        path = Path(workdir) / f"checkpoints-{uuid.uuid4().hex}.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
    elif kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        if not postgres_url:
            raise ValueError("a postgres checkpointer needs postgres_url (see postgres_server)")
        async with AsyncPostgresSaver.from_conn_string(postgres_url) as saver:
            yield saver
    else:
        raise ValueError(f"unknown checkpointer {kind!r}: use one of {CHECKPOINTER_KINDS}")
