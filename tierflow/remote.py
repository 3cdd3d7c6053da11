"""Drive a LangGraph API server (``langgraph dev``, Aegra, LangGraph Platform) from tierflow.

:class:`RemoteRunner` has the same methods as :class:`tierflow.runner.Runner` (``run``,
``resume``, ``state``, ``thread_info``) and returns the same :class:`RunResult`, but the run
happens on the server, through the official ``langgraph_sdk`` client: threads, runs with
streaming (tierflow's progress events arrive as ``custom`` chunks), interrupts and
``Command(resume=...)``. The CLI uses it for ``tierflow run|resume|show --remote URL``.

The server runs the graphs with its own ``tierflow.toml`` (tiers, keys, checkpointer); a run's
policy, ``unattended`` and ``budget_usd`` travel as the run context, which is plain data.

Example:
    >>> runner = RemoteRunner("http://127.0.0.1:2024", context={"policy": "all-nano"})
    >>> runner.url
    'http://127.0.0.1:2024'
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tierflow.errors import TierflowError
from tierflow.protocol import StreamEvent
from tierflow.runner import EventHandler, Interrupt, RunResult

__all__ = ["RemoteRunner", "RemoteError"]


class RemoteError(TierflowError):
    """The server could not be reached, or refused or failed a request."""


class RemoteRunner:
    """Runs graphs on a LangGraph API server at ``url`` (see the module docstring).

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:2024``.
        api_key: sent as ``x-api-key`` (LangGraph Platform); None for local servers.
        context: the run context sent with each new run (``policy``, ``unattended``,
            ``budget_usd``, ...; see :class:`tierflow.runtime.RunContext`).
        timeout_s: HTTP timeout of one request (a streamed run may take longer in total).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.context = dict(context or {})
        self._api_key = api_key
        self._timeout_s = timeout_s

    def _client(self) -> Any:
        from langgraph_sdk import get_client

        return get_client(url=self.url, api_key=self._api_key, timeout=self._timeout_s)

    async def run(
        self,
        graph: str,
        inputs: Mapping[str, Any],
        *,
        thread_id: str | None = None,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Start (or continue, with new input) a thread of ``graph`` on the server."""
        client = self._client()
        async with self._errors(f"start {graph}"):
            graphs = {a["graph_id"] for a in await client.assistants.search(limit=100)}
            if graph not in graphs:
                raise RemoteError(
                    f"the server at {self.url} has no graph '{graph}'; it serves: "
                    f"{', '.join(sorted(graphs)) or 'none'}"
                )
            thread = await client.threads.create(
                thread_id=thread_id, metadata={"graph": graph}, if_exists="do_nothing"
            )
            tid = thread["thread_id"]
            await self._stream(client, tid, graph, on_event, input=dict(inputs))
            return await self._result(client, tid, graph)

    async def resume(
        self,
        thread_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Answer a thread's interrupts (id -> value), or carry on after its run died."""
        client = self._client()
        graph = (await self.thread_info(thread_id))["graph"]
        async with self._errors(f"resume thread {thread_id}"):
            if answers:
                command = {"resume": dict(answers)}
                await self._stream(client, thread_id, graph, on_event, command=command)
            else:
                await self._stream(client, thread_id, graph, on_event, input=None)
            return await self._result(client, thread_id, graph)

    async def state(self, thread_id: str) -> RunResult:
        """The thread's latest values and pending interrupts, as the server has them."""
        graph = (await self.thread_info(thread_id))["graph"]
        async with self._errors(f"read thread {thread_id}"):
            return await self._result(self._client(), thread_id, graph)

    async def thread_info(self, thread_id: str) -> dict[str, Any]:
        """The thread's metadata, with ``graph`` set (ours, or the server's ``graph_id``)."""
        async with self._errors(f"read thread {thread_id}"):
            try:
                thread = await self._client().threads.get(thread_id)
            except Exception as exc:  # noqa: BLE001 - the SDK raises httpx errors
                if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                    raise RemoteError(
                        f"the server at {self.url} has no thread '{thread_id}'"
                    ) from None
                raise
        meta = dict(thread.get("metadata") or {})
        graph = meta.get("graph") or meta.get("graph_id")
        if not graph:
            raise RemoteError(
                f"thread '{thread_id}' on {self.url} has not run a graph yet: start it with "
                "tierflow run GRAPH INPUT --remote URL --thread ID"
            )
        return {**meta, "graph": graph}

    async def _stream(
        self,
        client: Any,
        thread_id: str,
        graph: str,
        on_event: EventHandler | None,
        **request: Any,
    ) -> None:
        context = self.context or None
        async for part in client.runs.stream(
            thread_id, graph, stream_mode=["updates", "custom"], context=context, **request
        ):
            if part.event == "error":
                raise RemoteError(f"the run of {graph} failed on the server: {part.data}")
            if on_event is None:
                continue
            if part.event == "custom" and isinstance(part.data, dict):
                on_event(part.data)
            elif part.event == "updates" and isinstance(part.data, dict):
                for node in part.data:
                    if node != "__interrupt__":
                        on_event(
                            {"event": StreamEvent.NODE_DONE.value, "node": node, "namespace": []}
                        )

    async def _result(self, client: Any, thread_id: str, graph: str) -> RunResult:
        state = await client.threads.get_state(thread_id)
        pending = list(state.get("interrupts") or [])
        if not pending:  # some servers list them only under the tasks waiting on them
            pending = [i for t in state.get("tasks") or () for i in t.get("interrupts") or ()]
        interrupts = [Interrupt(str(i["id"]), i.get("value")) for i in pending]
        return RunResult(thread_id, graph, dict(state.get("values") or {}), interrupts)

    @contextlib.asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """Transport and HTTP errors as a RemoteError naming the server and what to do."""
        import httpx
        from langgraph_sdk.errors import APIConnectionError

        try:
            yield
        except (httpx.TransportError, APIConnectionError) as exc:
            raise RemoteError(
                f"could not {doing}: no LangGraph server answers at {self.url} ({exc}); "
                "start one (langgraph dev, or an Aegra server) or fix --remote"
            ) from exc
        except httpx.HTTPStatusError as exc:
            response = getattr(exc, "response", None)
            said = f"{response.status_code}: {response.text[:500]}" if response else str(exc)
            raise RemoteError(
                f"could not {doing}: the server at {self.url} answered {said}"
            ) from exc
