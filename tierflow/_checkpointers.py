"""Throwaway checkpointers for tests and benchmarks: memory, SQLite, a scratch PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tierflow.errors import InputError

__all__ = [
    "CHECKPOINTER_KINDS",
    "free_port",
    "postgres_bin",
    "postgres_server",
    "scratch_checkpointer",
]

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
            raise InputError(
                "a sqlite checkpointer needs a workdir for its file: pass workdir=<a folder>"
            )
        path = Path(workdir) / f"checkpoints-{uuid.uuid4().hex}.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
    elif kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        if not postgres_url:
            raise InputError(
                "a postgres checkpointer needs postgres_url: pass the URL postgres_server() yields"
            )
        async with AsyncPostgresSaver.from_conn_string(postgres_url) as saver:
            yield saver
    else:
        raise InputError(f"unknown checkpointer {kind!r}: use one of {CHECKPOINTER_KINDS}")
