"""Run, resume and inspect checkpointed threads (SQLite by default, PostgreSQL by URL).

The runs a Runner drives keep their spend ledger beside its checkpoints: a SQLite file next to
SQLite checkpoints (:data:`LEDGER_FILE`), the PostgreSQL database of PostgreSQL ones, so a
request in flight when the process dies stays charged after a restart. The setting is the
Runner's own (:func:`tierflow.budget.ledger_scope`); ``share_ledgers`` and
``TIERFLOW_LEDGER_URL`` override it for the whole process. When a drive ends, no hold of the
run stays open (:func:`tierflow.budget.finish_run`), and its results include the records only
the ledger has: attempts cancelled after they were sent, holds taken as estimated spend.

Example:
    >>> import asyncio
    >>> from tierflow.runner import Runner
    >>> runner = Runner(data_dir=".tierflow")  # doctest: +SKIP
    >>> asyncio.run(runner.run("codebase_qa", {"request": "Where is X?"}))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from tierflow.budget import finish_run, kept_records, ledger_scope
from tierflow.config import public_url
from tierflow.errors import TierflowError
from tierflow.protocol import StreamEvent
from tierflow.registry import load_builder
from tierflow.runtime import RunContext, TierPolicy
from tierflow.threads import ThreadRegistry
from tierflow.tracing import graph_run_config

__all__ = ["LEDGER_FILE", "Runner", "RunResult", "Interrupt", "open_checkpointer"]

EventHandler = Callable[[dict[str, Any]], None]
# The spend ledger's file beside SQLite checkpoints (``checkpoints.sqlite``), in ``data_dir``.
LEDGER_FILE = "ledger.sqlite"
_POSTGRES = ("postgres://", "postgresql://")


def _checkpoint_url(url: str | None) -> str | None:
    return url or os.environ.get("TIERFLOW_CHECKPOINT_URL")


@asynccontextmanager
async def open_checkpointer(
    data_dir: Path, url: str | None = None
) -> AsyncIterator[BaseCheckpointSaver]:
    """SQLite file under ``data_dir`` unless ``url`` (or ``$TIERFLOW_CHECKPOINT_URL``) is postgres."""
    url = _checkpoint_url(url)
    if url and url.startswith(_POSTGRES):
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
    """Runs registered graphs with a checkpointer and remembers which graph each thread uses.

    The registry is a table in the checkpointer's database (:class:`tierflow.threads.ThreadRegistry`).
    """

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

    @property
    def ledger_url(self) -> str:
        """Where this Runner's runs keep their spend ledger (see the module docstring)."""
        url = _checkpoint_url(self.checkpoint_url)
        if url and url.startswith(_POSTGRES):
            # Other processes may run this database's threads too: one budget row per run.
            return url
        return f"sqlite:///{(self.data_dir / LEDGER_FILE).absolute()}"

    @asynccontextmanager
    async def _registry(self) -> AsyncIterator[tuple[BaseCheckpointSaver, ThreadRegistry]]:
        async with open_checkpointer(self.data_dir, self.checkpoint_url) as saver:
            yield saver, await ThreadRegistry.open(saver, self.data_dir)

    def _info(self, graph: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "graph": graph,
            "profile": self.context.profile,
            "policy": dataclasses.asdict(self.context.policy),
            "created_at": time.time(),
            # A process killed before the first checkpoint can still be resumed from it
            # (LangGraph has nothing to resume from without it).
            "input": json.loads(json.dumps(dict(inputs), default=str)),
        }

    async def thread_info(self, thread_id: str) -> dict[str, Any]:
        """Graph, profile, policy and input of a thread registered in this checkpointer."""
        async with self._registry() as (_saver, registry):
            return await self._known(registry, thread_id)

    async def _known(self, registry: ThreadRegistry, thread_id: str) -> dict[str, Any]:
        """The thread's registered info, or a TierflowError naming the recent threads."""
        info = await registry.get(thread_id)
        if info is None:
            known = ", ".join(await registry.recent()) or "(none)"
            where = public_url(self.checkpoint_url) if self.checkpoint_url else self.data_dir
            raise TierflowError(f"unknown thread '{thread_id}' in {where}; recent threads: {known}")
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
        async with self._registry() as (saver, registry):
            # Registered with its input before the first step: a run killed at any moment
            # can be resumed.
            await registry.put(thread_id, self._info(graph, inputs))
            try:
                return await self._drive(
                    saver, graph, thread_id, dict(inputs), self.context, on_event
                )
            except Exception:
                if await saver.aget_tuple(_config(thread_id)) is None:
                    await registry.delete(thread_id)  # rejected before its first checkpoint
                raise

    async def resume(
        self,
        thread_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Continue a thread: answer its interrupts (id -> value), or just carry on after a crash."""
        async with self._registry() as (saver, registry):
            info = await self._known(registry, thread_id)
            payload: Any = Command(resume=dict(answers)) if answers else None
            if payload is None and await saver.aget_tuple(_config(thread_id)) is None:
                payload = info.get("input")  # killed before its first checkpoint: start again
            ctx = self._context_for(info)
            return await self._drive(saver, info["graph"], thread_id, payload, ctx, on_event)

    async def threads(self) -> list[tuple[str, dict[str, Any]]]:
        """Every thread registered in this checkpointer, newest first, with its info."""
        async with self._registry() as (_saver, registry):
            return await registry.all()

    async def state(self, thread_id: str) -> RunResult:
        """The latest checkpointed values and pending interrupts of a thread."""
        async with self._registry() as (saver, registry):
            info = await self._known(registry, thread_id)
            compiled = load_builder(info["graph"]).compile(checkpointer=saver)
            snap = await compiled.aget_state(_config(thread_id))
            with ledger_scope(self.ledger_url):
                kept = await kept_records(snap.values or {}, thread_id)
            return _result(
                thread_id, info["graph"], snap, [*await _pending_usage(saver, snap), *kept]
            )

    async def history(self, thread_id: str) -> list[Any]:
        """Every checkpoint of a thread, newest first (for time travel)."""
        async with self._registry() as (saver, registry):
            info = await self._known(registry, thread_id)
            compiled = load_builder(info["graph"]).compile(checkpointer=saver)
            return [s async for s in compiled.aget_state_history(_config(thread_id))]

    async def _drive(
        self,
        saver: BaseCheckpointSaver,
        graph: str,
        thread_id: str,
        payload: Any,
        context: RunContext,
        on_event: EventHandler | None,
    ) -> RunResult:
        compiled = load_builder(graph).compile(checkpointer=saver, name=graph)
        config = graph_run_config(graph, thread_id, _config(thread_id))
        with ledger_scope(self.ledger_url):
            try:
                await _stream(compiled, payload, config, context, on_event)
            except BaseException:
                # The drive ends here too; the run's own error is the one to report.
                with contextlib.suppress(Exception):
                    await _finish(saver, compiled, config, thread_id, graph)
                raise
            return await _finish(saver, compiled, config, thread_id, graph)


async def _stream(
    compiled: Any,
    payload: Any,
    config: dict[str, Any],
    context: RunContext,
    on_event: EventHandler | None,
) -> None:
    """Drive the graph to its next stop, passing progress events on."""
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
                    on_event(
                        {"event": StreamEvent.NODE_DONE.value, "node": node, "namespace": list(_ns)}
                    )


async def _finish(
    saver: BaseCheckpointSaver, compiled: Any, config: dict[str, Any], thread_id: str, graph: str
) -> RunResult:
    """Where the drive left the thread; no hold of its run stays open (``finish_run``)."""
    snap = await compiled.aget_state(config)
    kept = await finish_run(snap.values or {}, thread_id)
    return _result(thread_id, graph, snap, [*await _pending_usage(saver, snap), *kept])


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": 100}


async def _pending_usage(saver: BaseCheckpointSaver, snap: Any) -> list[dict[str, Any]]:
    """Usage records in the writes of a step that has not finished (a task waits on a human).

    A subagent task's finished phases, and tasks that finished beside the paused one, are
    checkpointed as pending writes until the step completes; reports include what they spent.
    """
    saved = await saver.aget_tuple(snap.config) if getattr(snap, "config", None) else None
    out: list[dict[str, Any]] = []
    for _task_id, channel, value in (saved.pending_writes if saved else None) or ():
        if channel == "usage" and isinstance(value, list):
            out += value
        elif channel == "__return__" and isinstance(value, dict):  # a subagent phase's result
            out += list(value.get("usage") or [])
    return out


def _result(
    thread_id: str, graph: str, snap: Any, pending: Sequence[dict[str, Any]] = ()
) -> RunResult:
    interrupts = [Interrupt(i.id, i.value) for i in getattr(snap, "interrupts", ()) or ()]
    values = dict(snap.values or {})
    usage = list(values.get("usage") or [])
    seen = {r["id"] for r in usage}
    # Records of a step still waiting (see _pending_usage), once each.
    for rec in pending:
        if rec["id"] not in seen:
            seen.add(rec["id"])
            usage.append(rec)
    values["usage"] = usage
    return RunResult(thread_id, graph, values, interrupts)
