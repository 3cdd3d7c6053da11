"""The thread registry: which graph, profile, policy and input each thread was started with.

It lives in the checkpointer's own database (table ``tierflow_threads``), so it is as durable
and as shared as the checkpoints: a thread is registered, with its input, in one transaction
before its first step, concurrent processes on one data dir or one PostgreSQL database never
lose each other's threads, and there is no second file to corrupt. A ``threads.json`` left by
an older tierflow is imported once (and renamed ``threads.json.imported``).

Example:
    >>> import asyncio
    >>> from pathlib import Path
    >>> from tierflow.runner import open_checkpointer
    >>> async def demo(d: Path) -> dict:
    ...     async with open_checkpointer(d) as saver:
    ...         reg = await ThreadRegistry.open(saver, d)
    ...         await reg.put("t1", {"graph": "triage"})
    ...         return await reg.get("t1")
    >>> asyncio.run(demo(Path(getfixture("tmp_path"))))  # doctest: +SKIP
    {'graph': 'triage'}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from tierflow.errors import TierflowError

__all__ = ["ThreadRegistry"]

_TABLE = """CREATE TABLE IF NOT EXISTS tierflow_threads (
    thread_id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
)"""


class ThreadRegistry:
    """``tierflow_threads`` in the database of an AsyncSqliteSaver or AsyncPostgresSaver."""

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self._saver = saver
        self._postgres = type(saver).__name__ == "AsyncPostgresSaver"
        if not self._postgres and type(saver).__name__ != "AsyncSqliteSaver":
            raise TierflowError(
                f"the thread registry needs a SQLite or PostgreSQL checkpointer, not "
                f"{type(saver).__name__}; use tierflow.runner.open_checkpointer"
            )

    @classmethod
    async def open(cls, saver: BaseCheckpointSaver, data_dir: Path | None = None) -> ThreadRegistry:
        """The registry of ``saver``'s database, created if needed (and threads.json imported)."""
        reg = cls(saver)
        await reg._execute(_TABLE)
        legacy = data_dir / "threads.json" if data_dir is not None else None
        if legacy is not None and legacy.exists():
            await reg._import(legacy)
        return reg

    async def put(self, thread_id: str, info: dict[str, Any]) -> None:
        """Register (or replace) a thread, atomically."""
        sql = (
            "INSERT INTO tierflow_threads (thread_id, info, created_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (thread_id) DO UPDATE SET info = excluded.info"
        )
        await self._execute(sql, (thread_id, json.dumps(info, default=str), time.time()))

    async def get(self, thread_id: str) -> dict[str, Any] | None:
        """The thread's info, or None when it is not registered."""
        rows = await self._query(
            "SELECT info FROM tierflow_threads WHERE thread_id = {p}", (thread_id,)
        )
        return json.loads(rows[0][0]) if rows else None

    async def delete(self, thread_id: str) -> None:
        """Forget a thread (its checkpoints, if any, are untouched)."""
        await self._execute("DELETE FROM tierflow_threads WHERE thread_id = {p}", (thread_id,))

    async def all(self) -> list[tuple[str, dict[str, Any]]]:
        """Every registered thread with its info, newest first."""
        rows = await self._query(
            "SELECT thread_id, info FROM tierflow_threads ORDER BY created_at DESC"
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    async def recent(self, limit: int = 5) -> list[str]:
        """The newest thread ids, newest first."""
        rows = await self._query(
            "SELECT thread_id FROM tierflow_threads ORDER BY created_at DESC LIMIT {p}", (limit,)
        )
        return [r[0] for r in rows]

    # -- internals -------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql.replace("{p}", "%s" if self._postgres else "?")

    async def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        await self._run(sql, params, fetch=False)

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await self._run(sql, params, fetch=True)

    async def _run(self, sql: str, params: tuple[Any, ...], fetch: bool) -> list[tuple[Any, ...]]:
        saver: Any = self._saver
        if self._postgres:
            async with saver._cursor() as cur:  # the saver's lock and connection handling
                await cur.execute(self._sql(sql), params)
                rows = await cur.fetchall() if fetch else []
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
        async with saver.lock:
            cursor = await saver.conn.execute(self._sql(sql), params)
            rows = list(await cursor.fetchall()) if fetch else []
            await cursor.close()
            await saver.conn.commit()
        return [tuple(r) for r in rows]

    async def _import(self, legacy: Path) -> None:
        try:
            threads = json.loads(legacy.read_text())
        except json.JSONDecodeError as exc:
            raise TierflowError(
                f"{legacy} (the thread index of an older tierflow) is not valid JSON ({exc}); "
                "move it aside to go on (checkpoints are untouched)"
            ) from None
        sql = (
            "INSERT INTO tierflow_threads (thread_id, info, created_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (thread_id) DO NOTHING"
        )
        for thread_id, info in threads.items():
            created = float(info.get("created_at") or time.time())
            await self._execute(sql, (thread_id, json.dumps(info, default=str), created))
        legacy.replace(legacy.with_name("threads.json.imported"))
