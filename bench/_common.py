"""Shared bench helpers: statistics, tables, JSON output, checkpointers and a throwaway PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from glob import glob
from pathlib import Path
from typing import Any

from langgraph.types import RetryPolicy

__all__ = [
    "RETRY",
    "USAGE",
    "quiet_env",
    "thread",
    "summary",
    "table",
    "write_json",
    "rotated",
    "run_bench",
    "postgres_server",
    "saver",
    "setup_postgres",
]

RETRY = RetryPolicy(initial_interval=0, jitter=False, max_attempts=1)
USAGE = (1000, 100)  # fixed token usage per scripted reply: no token counting in the double


def quiet_env() -> None:
    """No tracing, no TIERFLOW_* overrides: every run is local and uses the packaged profiles."""
    os.environ["LANGSMITH_TRACING"] = "false"
    os.environ["LANGCHAIN_TRACING_V2"] = "false"
    for name in [n for n in os.environ if n.startswith("TIERFLOW_")]:
        del os.environ[name]


def thread() -> dict[str, Any]:
    """A fresh thread config (tierflow's budget ledgers are per thread id)."""
    return {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}"}}


def summary(values: Sequence[float]) -> dict[str, float]:
    """Min and median of a series."""
    return {"min": min(values), "median": statistics.median(values), "n": len(values)}


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` rotated by ``k``: each round starts with a different variant."""
    k %= len(items)
    return [*items[k:], *items[:k]]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, right-aligned except the first column."""
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def run_bench(
    name: str,
    args: Any,
    measure: Callable[[Any], Any],
    report: Callable[[Any, Any], str],
) -> int:
    """Run ``measure(args)`` (a coroutine function), print its report, write the JSON."""
    import asyncio

    results = asyncio.run(measure(args))
    print()
    print(report(results, args))
    write_json(args.json, {"bench": name, "args": vars(args), "results": results})
    return 0


def write_json(path: str | None, data: Any) -> None:
    """Write ``data`` to ``path`` (no-op when None)."""
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"\nwrote {path}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root: drop to the postgres user when we are root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL on a free loopback port; stop it (pg_ctl, then PID) at exit.

    Yields the connection URL. Needs the Debian ``postgresql`` package.
    """
    bins = sorted(glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql/*/bin; use --no-postgres")
    pgbin = bins[-1]
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    started = False
    try:
        _pg([f"{pgbin}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-locale"])  # fmt: skip
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=on"
        _pg([f"{pgbin}/pg_ctl", "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w",
             "start"])  # fmt: skip
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _stop_postgres(pgbin, data)
        shutil.rmtree(root, ignore_errors=True)


def _pg(cmd: list[str]) -> None:
    subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)


def _stop_postgres(pgbin: str, data: Path) -> None:
    pid_file = data / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    try:
        _pg([f"{pgbin}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
    except (subprocess.SubprocessError, OSError):
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


def saver(kind: str, workdir: Path, pg_url: str | None) -> Callable[[], Any]:
    """Factory of async context managers yielding a fresh checkpointer of ``kind``.

    ``memory``: InMemorySaver; ``sqlite``: AsyncSqliteSaver on a new file in ``workdir``;
    ``postgres``: AsyncPostgresSaver on ``pg_url`` (tables set up by :func:`setup_postgres`).
    """

    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[Any]:
        if kind == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            yield InMemorySaver()
        elif kind == "sqlite":
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            path = workdir / f"ckpt-{uuid.uuid4().hex}.sqlite"
            async with AsyncSqliteSaver.from_conn_string(str(path)) as cp:
                yield cp
        elif kind == "postgres":
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            assert pg_url is not None
            async with AsyncPostgresSaver.from_conn_string(pg_url) as cp:
                yield cp
        else:
            raise ValueError(f"unknown checkpointer {kind!r}: use memory, sqlite or postgres")

    return make


async def setup_postgres(pg_url: str) -> None:
    """Create the checkpoint tables once."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(pg_url) as cp:
        await cp.setup()
