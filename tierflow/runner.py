"""Run, resume and inspect checkpointed threads (SQLite by default, PostgreSQL by URL).

Example:
    >>> import asyncio
    >>> from tierflow.runner import Runner
    >>> runner = Runner(data_dir=".tierflow")  # doctest: +SKIP
    >>> asyncio.run(runner.run("codebase_qa", {"request": "Where is X?"}))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from tierflow.errors import TierflowError
from tierflow.registry import load_builder
from tierflow.runtime import RunContext, TierPolicy
from tierflow.tracing import graph_run_config

__all__ = ["Runner", "RunResult", "Interrupt", "open_checkpointer"]

EventHandler = Callable[[dict[str, Any]], None]


@asynccontextmanager
async def open_checkpointer(
    data_dir: Path, url: str | None = None
) -> AsyncIterator[BaseCheckpointSaver]:
    """SQLite file under ``data_dir`` unless ``url`` (or ``$TIERFLOW_CHECKPOINT_URL``) is postgres."""
    url = url or os.environ.get("TIERFLOW_CHECKPOINT_URL")
    if url and url.startswith(("postgres://", "postgresql://")):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError as exc:
            raise TierflowError(
                "PostgreSQL checkpoints need: pip install 'tierflow[postgres]'"
            ) from exc
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(data_dir / "checkpoints.sqlite")) as saver:
        yield saver


@dataclass(frozen=True)
class Interrupt:
    """A question a run is waiting on."""

    id: str
    value: Any


@dataclass
class RunResult:
    """Where a run stands after ``run``/``resume``."""

    thread_id: str
    graph: str
    values: dict[str, Any]
    interrupts: list[Interrupt] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """True when nothing is pending."""
        return not self.interrupts


class Runner:
    """Runs registered graphs with a checkpointer and remembers which graph each thread uses."""

    def __init__(
        self,
        data_dir: Path | str = ".tierflow",
        *,
        checkpoint_url: str | None = None,
        context: RunContext | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.checkpoint_url = checkpoint_url
        self.context = context or RunContext()
        self._threads_file = self.data_dir / "threads.json"

    def _threads(self) -> dict[str, dict[str, Any]]:
        if not self._threads_file.exists():
            return {}
        try:
            return json.loads(self._threads_file.read_text())
        except json.JSONDecodeError as exc:
            raise TierflowError(
                f"{self._threads_file} is not valid JSON ({exc}); move it aside to start a new "
                "thread index (checkpoints are untouched)"
            ) from None

    @contextlib.contextmanager
    def _locked_threads(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write of threads.json under an exclusive lock (processes share it)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "threads.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            threads = self._threads()
            yield threads
            # A temporary file of this process's own, then an atomic rename.
            tmp = self._threads_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(threads, indent=1))
            tmp.replace(self._threads_file)

    def _remember(self, thread_id: str, graph: str, inputs: Mapping[str, Any]) -> None:
        with self._locked_threads() as threads:
            threads[thread_id] = {
                "graph": graph,
                "profile": self.context.profile,
                "policy": dataclasses.asdict(self.context.policy),
                "created_at": time.time(),
                # Kept until the first checkpoint holds it: a process killed before then can
                # still be resumed (LangGraph has nothing to resume from without it).
                "input": json.loads(json.dumps(dict(inputs), default=str)),
            }

    def _forget(self, thread_id: str) -> None:
        with self._locked_threads() as threads:
            threads.pop(thread_id, None)

    def thread_info(self, thread_id: str) -> dict[str, Any]:
        """Graph and profile of a thread started by this runner's data dir."""
        info = self._threads().get(thread_id)
        if info is None:
            known = ", ".join(sorted(self._threads())[-5:]) or "(none)"
            raise TierflowError(
                f"unknown thread '{thread_id}' in {self.data_dir}; recent threads: {known}"
            )
        return info

    def _context_for(self, info: Mapping[str, Any]) -> RunContext:
        """The run context a thread was started with (profile and tier policy are remembered)."""
        ctx = self.context
        if info.get("profile"):
            ctx = dataclasses.replace(ctx, profile=info["profile"])
        if info.get("policy"):
            ctx = dataclasses.replace(ctx, policy=TierPolicy(**info["policy"]))
        return ctx

    async def run(
        self,
        graph: str,
        inputs: Mapping[str, Any],
        *,
        thread_id: str | None = None,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Start (or continue, with new input) a thread of ``graph``."""
        thread_id = thread_id or f"{graph}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._remember(thread_id, graph, inputs)  # before running: a crashed run can resume
        try:
            return await self._drive(graph, thread_id, dict(inputs), self.context, on_event)
        except Exception:
            if not await self.history(thread_id):
                self._forget(thread_id)  # rejected before its first checkpoint: nothing to resume
            raise

    async def resume(
        self,
        thread_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Continue a thread: answer its interrupts (id -> value), or just carry on after a crash."""
        info = self.thread_info(thread_id)
        payload: Any = Command(resume=dict(answers)) if answers else None
        if payload is None and info.get("input") is not None and not await self.history(thread_id):
            payload = info["input"]  # killed before its first checkpoint: start it again
        ctx = self._context_for(info)
        return await self._drive(info["graph"], thread_id, payload, ctx, on_event)

    async def state(self, thread_id: str) -> RunResult:
        """The latest checkpointed values and pending interrupts of a thread."""
        info = self.thread_info(thread_id)
        async with open_checkpointer(self.data_dir, self.checkpoint_url) as saver:
            compiled = load_builder(info["graph"]).compile(checkpointer=saver)
            snap = await compiled.aget_state(_config(thread_id), subgraphs=True)
            return _result(thread_id, info["graph"], snap)

    async def history(self, thread_id: str) -> list[Any]:
        """Every checkpoint of a thread, newest first (for time travel)."""
        info = self.thread_info(thread_id)
        async with open_checkpointer(self.data_dir, self.checkpoint_url) as saver:
            compiled = load_builder(info["graph"]).compile(checkpointer=saver)
            return [s async for s in compiled.aget_state_history(_config(thread_id))]

    async def _drive(
        self,
        graph: str,
        thread_id: str,
        payload: Any,
        context: RunContext,
        on_event: EventHandler | None,
    ) -> RunResult:
        async with open_checkpointer(self.data_dir, self.checkpoint_url) as saver:
            compiled = load_builder(graph).compile(checkpointer=saver, name=graph)
            config = graph_run_config(graph, thread_id, _config(thread_id))
            async for _ns, mode, chunk in compiled.astream(
                payload,
                config,
                context=context,
                stream_mode=["updates", "custom"],
                subgraphs=True,
            ):
                if on_event is None:
                    continue
                if mode == "custom" and isinstance(chunk, dict):
                    on_event(chunk)
                elif mode == "updates" and isinstance(chunk, dict):
                    for node in chunk:
                        if node != "__interrupt__":
                            on_event({"event": "node_done", "node": node, "namespace": list(_ns)})
            snap = await compiled.aget_state(config, subgraphs=True)
            return _result(thread_id, graph, snap)


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": 100}


def _nested_usage(snap: Any) -> list[dict[str, Any]]:
    """Usage records still inside paused subgraphs (a subagent waiting on a human)."""
    out: list[dict[str, Any]] = []
    for task in getattr(snap, "tasks", ()) or ():
        sub = getattr(task, "state", None)
        if sub is not None and hasattr(sub, "values"):
            out += list((sub.values or {}).get("usage") or [])
            out += _nested_usage(sub)
    return out


def _result(thread_id: str, graph: str, snap: Any) -> RunResult:
    interrupts = [Interrupt(i.id, i.value) for i in getattr(snap, "interrupts", ()) or ()]
    values = dict(snap.values or {})
    # Records of subagents paused mid-task live in their subgraph's checkpoint until the task
    # ends; include them so reports show everything spent so far.
    usage = list(values.get("usage") or [])
    seen = {r["id"] for r in usage}
    values["usage"] = usage + [r for r in _nested_usage(snap) if r["id"] not in seen]
    return RunResult(thread_id, graph, values, interrupts)
