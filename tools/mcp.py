"""An MCP server's tools for subagents, with the treatment tierflow gives its own tools.

Each tool checks its arguments against the server's input schema (a bad call is refused with the
fix, and the run goes on), runs under a timeout (cancelled on the server when it runs out), cuts
long results, and turns a failure (an ``isError`` result, a server that stopped) into a message the
model is shown. Which tools are offered is an allow-list and a deny-list. A server that does not
start is a :class:`~tierflow.errors.SpecError` naming the command or URL and the fix.

Needs the ``mcp`` extra (``pip install 'tierflow[mcp]'``); this module imports without it.

Example:
    >>> import sys
    >>> server = [sys.executable, "tests/mcp_server.py"]
    >>> with McpToolset(server, policy=McpPolicy(allow=("add",), timeout_s=5)) as mcp:
    ...     [t.name for t in mcp.tools], mcp.tools[0].invoke({"a": 2, "b": 3})
    (['add'], '5.0')
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from os import PathLike
from types import ModuleType, TracebackType
from typing import Any

from langchain_core.tools import BaseTool, ToolException

from tierflow.errors import SpecError

__all__ = ["McpToolset", "McpPolicy", "McpToolError", "McpFailure"]

INSTALL_HINT = "pip install 'tierflow[mcp]'"


@dataclass(frozen=True)
class McpPolicy:
    """How an MCP server's tools are treated; the defaults match a Subagent's own.

    Attributes:
        timeout_s: a call running longer is cancelled on the server; the model is told so.
        startup_timeout_s: how long starting the server and listing its tools may take.
        max_output_chars: a longer result is cut, with a note of how much was left out.
        allow: offer only these tools (server names); None offers every tool not denied.
        deny: never offer these tools (server names); they cannot be called either.
        prefix: put before each tool's name (``"gh_"``) to keep two servers' tools apart.
        restarts: a server that stopped is started again on the next call, this many times.
    """

    timeout_s: float = 30.0
    startup_timeout_s: float = 20.0
    max_output_chars: int = 4000
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    prefix: str = ""
    restarts: int = 1

    def __post_init__(self) -> None:
        for name in ("allow", "deny"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise SpecError(f"McpPolicy.{name} is the string {value!r}; pass a tuple of "
                                f"tool names, e.g. {name}=({value!r},)")  # fmt: skip
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        for name, low in (("timeout_s", 0), ("startup_timeout_s", 0), ("max_output_chars", 0)):
            if getattr(self, name) <= low:
                raise SpecError(f"McpPolicy.{name} must be above {low}, got {getattr(self, name)}")
        if self.restarts < 0:
            raise SpecError(f"McpPolicy.restarts must be 0 or more, got {self.restarts}")
        both = sorted(set(self.allow or ()) & set(self.deny))
        if both:
            raise SpecError(f"McpPolicy names {both} in both allow and deny; keep each in one")


class McpFailure(StrEnum):
    """Why an MCP tool call failed."""

    ARGUMENTS = "arguments"  # refused before the call: the arguments do not fit the schema
    TIMEOUT = "timeout"  # cancelled after McpPolicy.timeout_s
    TOOL_ERROR = "tool_error"  # the server ran the tool and it reported an error (isError)
    PROTOCOL = "protocol"  # the server refused the request (an MCP error response)
    STOPPED = "stopped"  # the server is gone: its process exited or its connection closed


class McpToolError(ToolException):
    """A call to an MCP tool failed; the message, shown to the model, says what to do instead.

    Attributes:
        tool: the tool's name as offered to the model.
        failure: why (:class:`McpFailure`).
    """

    def __init__(self, tool: str, failure: McpFailure, message: str) -> None:
        self.tool, self.failure = tool, failure
        super().__init__(message)


def _load() -> ModuleType:
    """The MCP tool machinery, or an ImportError saying how to install it."""
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"MCP tools need the 'mcp' extra: {INSTALL_HINT}") from exc
    from tierflow.tools import _mcp_tool

    return _mcp_tool


class McpToolset:
    """The tools of one MCP server, connected from :meth:`open` (or ``with``) until :meth:`close`.

    Pass ``toolset.tools`` to a :class:`~tierflow.nodes.subagent.Subagent`. They can be called
    from any thread or event loop, sync or async; the server runs in one session for their
    lifetime (a stdio server as a child process, ended on close or at interpreter exit).

    Args:
        server: a streamable HTTP URL (``"http://127.0.0.1:8000/mcp"``), or a command that serves
            MCP over stdio: a list of arguments, or one shell-quoted string.
        policy: how the tools are treated (:class:`McpPolicy`).
        env: environment variables for a stdio server, over a minimal one (``PATH``, ``HOME``,
            ``USER``...): the caller's secrets reach the server only when named here.
        cwd: a stdio server's working directory.
        headers: HTTP headers sent to a URL (e.g. ``Authorization``).
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        policy: McpPolicy | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | PathLike[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        is_url = isinstance(server, str) and server.startswith(("http://", "https://"))
        command = [] if is_url else shlex.split(server) if isinstance(server, str) else list(server)
        if not is_url and (not command or not all(isinstance(a, str) and a for a in command)):
            raise SpecError(
                f"McpToolset needs a server: a URL ('http://host:port/mcp') or a stdio command "
                f"(['python', 'server.py']), got {server!r}"
            )
        if headers and not is_url:
            raise SpecError("McpToolset(headers=...) is for a URL; pass env=... to a command")
        if (env or cwd) and is_url:
            raise SpecError("McpToolset(env=..., cwd=...) is for a stdio command, not a URL")
        self.url = str(server) if is_url else ""
        self.command = tuple(command)
        self.policy = policy or McpPolicy()
        self._env, self._headers = dict(env or {}), dict(headers or {})
        self._cwd = None if cwd is None else str(cwd)
        self._session: Any = None
        self._tools: list[BaseTool] | None = None
        self._closed = False

    @property
    def label(self) -> str:
        """The server as errors name it: its URL, or its command line."""
        return self.url or shlex.join(self.command)

    def open(self) -> McpToolset:
        """Start (or reach) the server and list its tools; returns ``self``; safe to repeat.

        Raises:
            SpecError: the server did not start or answer, or ``allow``/``deny`` name a tool
                it does not have, or a tool's name cannot be offered to a model.
            ImportError: the ``mcp`` extra is not installed.
        """
        if self._closed:
            raise SpecError(f"the MCP toolset {self.label!r} was closed; make a new McpToolset")
        if self._tools is None:
            machinery = _load()
            target = machinery.Target(command=self.command, url=self.url, env=self._env,
                                      cwd=self._cwd, headers=self._headers)  # fmt: skip
            self._session, self._tools = machinery.connect(target, self.policy)
        return self

    @property
    def tools(self) -> list[BaseTool]:
        """The tools offered (allowed, not denied), in the server's order."""
        if self._tools is None:
            raise SpecError(f"the MCP server {self.label!r} is not open: call open() first, "
                            "or use `with McpToolset(...) as toolset:`")  # fmt: skip
        return list(self._tools)

    def close(self) -> None:
        """Disconnect and end a stdio server's process; its tools then refuse calls."""
        self._closed = True
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> McpToolset:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> McpToolset:
        return await asyncio.to_thread(self.open)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "not open" if self._tools is None else "open"
        return f"McpToolset({self.label!r}, {state})"
