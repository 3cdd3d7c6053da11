"""One MCP server connection, owned by a private event-loop thread so any thread or loop can call it.

A LangGraph run may call tools from its own event loop, from worker threads, or from a new loop per
``asyncio.run``; an MCP session is bound to the loop that opened it. So the session lives in one
long-lived task on a daemon thread's loop (:class:`Session`), calls are submitted to it as
``concurrent.futures.Future`` s, and cancelling such a future (a tierflow timeout) cancels the call on
the server too. The task's exit (close, or the interpreter's) ends a stdio server's process.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import shlex
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, CallToolResult, Tool

from tierflow.errors import SpecError

__all__ = ["Target", "Session", "ServerGone"]

log = logging.getLogger(__name__)

_MAX_PAGES = 100
_CLOSE_WAIT_S = 10.0  # stdio's own shutdown is bounded (stdin close, SIGTERM, SIGKILL: ~6 s)
_STDERR_TAIL = 600


@dataclass(frozen=True)
class Target:
    """Where the server is: a command run over stdio, or a streamable HTTP URL."""

    command: tuple[str, ...] = ()
    url: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How errors name the server: its URL, or its command line."""
        return self.url or shlex.join(self.command)


class ServerGone(Exception):
    """The server stopped answering (its process exited, its connection closed)."""


def _root(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio task groups wrap what went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _gone(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection is lost rather than that one call failed."""
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, OSError | httpx2.TransportError | anyio.BrokenResourceError |
                      anyio.ClosedResourceError | anyio.EndOfStream)  # fmt: skip


class Session:
    """A connected MCP server: its tools, and calls to them from any thread or event loop.

    Args:
        target: the server.
        startup_timeout_s: how long connecting and listing the tools may take.
        restarts: how many times a server that stopped is started again (on the next call).
    """

    def __init__(self, target: Target, startup_timeout_s: float, restarts: int) -> None:
        self.target = target
        self.restarts_left = restarts
        self._startup_s = startup_timeout_s
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"mcp:{target.label[:40]}", daemon=True
        )
        self._thread.start()
        self._client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Task[None] | None = None
        self._broken = False
        self._closed = False
        self._errlog = ""
        atexit.register(self.close)

    # --- opening --------------------------------------------------------------------------

    def open(self) -> list[Tool]:
        """Connect and list the server's tools; a server that does not come up is a SpecError."""
        with self._lock:
            return self._open_locked()

    def _open_locked(self) -> list[Tool]:
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        try:
            tools: list[Tool] = fut.result(self._startup_s + _CLOSE_WAIT_S)
        except BaseException as exc:  # noqa: BLE001 - every failure to start becomes one SpecError
            fut.cancel()
            raise self._start_error(_root(exc)) from None
        self._broken = False
        return tools

    async def _start(self) -> list[Tool]:
        ready: asyncio.Future[list[Tool]] = self._loop.create_future()
        task = asyncio.ensure_future(self._serve(ready))
        try:
            async with asyncio.timeout(self._startup_s):
                tools = await ready
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # the child is gone after this
            raise
        self._serving = task
        return tools

    async def _serve(self, ready: asyncio.Future[list[Tool]]) -> None:
        """The session's whole life: connect, list the tools, wait for close, disconnect."""
        self._stop = stop = asyncio.Event()
        try:
            async with self._connected() as client:
                tools = await _list_tools(client)
                if ready.done():  # the start timed out just now
                    return
                self._client = client
                ready.set_result(tools)
                await stop.wait()
        except asyncio.CancelledError:
            ready.cancel()
            raise
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not stop.is_set():
                log.warning("MCP server %s stopped: %r", self.target.label, _root(exc))
        finally:
            self._client = None

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[Client]:
        if self.target.url:
            headers = dict(self.target.headers)
            timeout = httpx2.Timeout(30.0, read=300.0)
            async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
                async with Client(streamable_http_client(self.target.url, http_client=http)) as c:
                    yield c
            return
        params = StdioServerParameters(
            command=self.target.command[0], args=list(self.target.command[1:]),
            env=dict(self.target.env) or None, cwd=self.target.cwd,
        )  # fmt: skip
        fd, self._errlog = tempfile.mkstemp(prefix="tierflow-mcp-", suffix=".stderr")
        os.close(fd)
        with open(self._errlog, "a", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                yield client

    def _stderr_tail(self) -> str:
        try:
            text = Path(self._errlog).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        return f" Its stderr ends: {text[-_STDERR_TAIL:]!r}." if text else ""

    def _start_error(self, exc: BaseException) -> SpecError:
        """What went wrong starting the server, and what to do about it."""
        label = self.target.label
        if isinstance(exc, TimeoutError):
            return SpecError(
                f"MCP server {label!r} did not answer within {self._startup_s:g} s.{self._stderr_tail()}"
                " Fix: check that it serves MCP over "
                + ("streamable HTTP at that URL" if self.target.url else "stdio (not HTTP)")
                + ", or raise McpPolicy(startup_timeout_s=...) for a slow start."
            )
        if self.target.url:
            return SpecError(
                f"no MCP server answered at {label!r} ({type(exc).__name__}: {exc}). Fix: start the "
                "server first and check the host, port and path (streamable HTTP endpoints "
                "usually end in /mcp)."
            )
        if isinstance(exc, FileNotFoundError | PermissionError):
            return SpecError(
                f"MCP server command {label!r} could not be started ({type(exc).__name__}: "
                f"{exc}). Fix: check that {self.target.command[0]!r} exists and is executable, "
                "or give its absolute path."
            )
        return SpecError(
            f"MCP server command {label!r} stopped before it served its tools ({type(exc).__name__}:"
            f" {exc}).{self._stderr_tail()} Fix: run the command by hand to see why it fails (a stdio"
            " server writes nothing but MCP messages to stdout)."
        )

    # --- calling --------------------------------------------------------------------------

    @property
    def will_restart(self) -> bool:
        """Whether a server that stopped is started again on the next call."""
        return self.restarts_left > 0 and not self._closed

    @property
    def broken(self) -> bool:
        """Whether the server stopped; the next :meth:`submit` starts it again (blocking)."""
        return self._broken

    def submit(
        self, name: str, args: dict[str, Any], timeout_s: float
    ) -> concurrent.futures.Future[CallToolResult]:
        """Start one call; its future raises TimeoutError, ServerGone or the server's MCPError."""
        client = self._ready_client()
        coro = self._call(client, name, args, timeout_s)
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _ready_client(self) -> Client:
        with self._lock:
            if self._closed:
                raise ServerGone(f"the MCP server {self.target.label!r} was closed")
            if self._broken:
                self._restart_locked()
            if self._client is None:
                raise ServerGone(f"the MCP server {self.target.label!r} is not connected")
            return self._client

    def _restart_locked(self) -> None:
        if self.restarts_left <= 0:
            raise ServerGone(f"the MCP server {self.target.label!r} stopped and is not restarted")
        self.restarts_left -= 1
        self._shutdown_locked()
        try:
            self._open_locked()
        except SpecError as exc:
            raise ServerGone(f"the MCP server stopped and could not be restarted: {exc}") from None

    async def _call(
        self, client: Client, name: str, args: dict[str, Any], timeout_s: float
    ) -> CallToolResult:
        try:
            with anyio.fail_after(timeout_s):  # a cancelled call is cancelled on the server too
                return await client.call_tool(name, args)
        except TimeoutError:
            raise
        except BaseException as exc:
            if _gone(_root(exc)):
                self._broken = True
                raise ServerGone(f"the MCP server {self.target.label!r} stopped") from exc
            raise

    # --- closing --------------------------------------------------------------------------

    def _shutdown_locked(self) -> None:
        """End the serving task (a stdio server's process with it) and wait until it has."""
        task, stop = self._serving, self._stop
        self._serving = None
        if task is not None and stop is not None and not self._loop.is_closed():

            async def finish() -> None:
                stop.set()
                await asyncio.gather(task, return_exceptions=True)

            fut = asyncio.run_coroutine_threadsafe(finish(), self._loop)
            with contextlib.suppress(concurrent.futures.TimeoutError):
                fut.result(_CLOSE_WAIT_S)
        if self._errlog:
            with contextlib.suppress(OSError):
                os.unlink(self._errlog)
            self._errlog = ""

    def close(self) -> None:
        """Disconnect, end the server process (stdio) and the loop thread; safe to repeat."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._shutdown_locked()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_CLOSE_WAIT_S)
            if not self._thread.is_alive():
                self._loop.close()
        atexit.unregister(self.close)


async def _list_tools(client: Client) -> list[Tool]:
    """Every tool the server lists, page by page."""
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools
