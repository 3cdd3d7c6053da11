"""Shared bench helpers: statistics, tables, JSON output, checkpointers and a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import statistics
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langgraph.types import RetryPolicy

from tierflow.testing import postgres_server, scratch_checkpointer

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


def saver(kind: str, workdir: Path, pg_url: str | None) -> Callable[[], Any]:
    """Factory of async context managers yielding a fresh checkpointer of ``kind``.

    See :func:`tierflow.testing.scratch_checkpointer` (PostgreSQL: :func:`postgres_server`).
    """
    return lambda: scratch_checkpointer(kind, workdir, pg_url)
