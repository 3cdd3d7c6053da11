"""A tiny real MCP server for the tests: stdio by default, streamable HTTP with ``--http PORT``.

Tools: ``add`` (two numbers), ``sleep`` (N seconds; ``cancelled`` counts those cut short), ``fail`` (an ``isError`` result), ``greet``
(a required string and a typed integer), ``pid`` (its process id) and ``crash`` (exits).
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("tierflow-test")


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


CANCELLED = [0]


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait this many seconds, then say so."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        CANCELLED[0] += 1
        raise
    return f"slept {seconds:g} s"


@server.tool()
def cancelled() -> int:
    """How many sleep calls the client cancelled."""
    return CANCELLED[0]


@server.tool()
def fail(reason: str = "no reason") -> str:
    """Always fails, with the reason given (an isError result)."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
def greet(name: str, times: int = 1) -> str:
    """Greet someone by name, ``times`` times."""
    return " ".join([f"Hello, {name}!"] * times)


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exit the server process at once (a crash)."""
    os._exit(3)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
