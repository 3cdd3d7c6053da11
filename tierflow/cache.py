"""Response cache by request: the same (model, messages, tools, parameters) is answered once.

Comparing tier policies on a benchmark sends many identical requests (a cascade's first step is
the all-nano run's request; its escalations are the all-flagship run's), and an interrupted
run should continue where it stopped without paying again. :class:`ResponseCache` is a
LangChain :class:`~langchain_core.caches.BaseCache` kept in one SQLite file, so it also serves
``langchain_core.globals.set_llm_cache`` users; the engine consults it in
:func:`tierflow.calling.call_model`, before the budget reserves anything for the network.

A hit is recorded like the original request (same tokens, price and latency, so a policy's
figures do not depend on what ran before it) with ``cached_response: true``;
:func:`paid_usd` sums only the requests that reached a provider.

Example:
    >>> import tempfile, pathlib
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> cache = ResponseCache(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
    >>> key = request_key("m", [HumanMessage("2+2?")], [], None, {"max_tokens": 8})
    >>> cache.get(key) is None
    True
    >>> cache.put(key, AIMessage("4"), latency_s=0.5)
    >>> cache.get(key)[0].content, cache.get(key)[1]
    ('4', 0.5)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration

from tierflow.errors import TierflowError

__all__ = ["ResponseCache", "CacheFileError", "request_key", "paid_usd", "open_cache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    prompt TEXT NOT NULL,
    llm TEXT NOT NULL,
    value TEXT NOT NULL,
    latency_s REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (prompt, llm)
)
"""


def _message_key(m: BaseMessage) -> list[Any]:
    extra = getattr(m, "tool_calls", None) or getattr(m, "tool_call_id", None) or None
    return [m.type, m.content, extra]


def request_key(
    model: str,
    messages: Sequence[BaseMessage],
    tools: Sequence[Mapping[str, Any]],
    tool_choice: str | None,
    params: Mapping[str, Any],
) -> tuple[str, str]:
    """(prompt, llm) key of one request: what the provider's answer depends on.

    The prompt part hashes the messages (type, content, tool calls); the llm part names the
    model and hashes the offered tools, the tool choice and the sampling parameters
    (``max_tokens``, ``temperature``, ``seed``...). Endpoints are not part of it: the same model
    behind a fallback URL answers the same request.
    """
    prompt = json.dumps([_message_key(m) for m in messages], sort_keys=True, default=str)
    llm = json.dumps(
        {"tools": list(tools), "tool_choice": tool_choice, "params": dict(params)},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(llm.encode()).hexdigest()[:32]
    return hashlib.sha256(prompt.encode()).hexdigest(), f"{model}:{digest}"


class ResponseCache(BaseCache):
    """Model responses in one SQLite file, keyed by :func:`request_key` (safe across threads).

    Args:
        path: the database file (created with its folder).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.execute(_SCHEMA)

    def get(self, key: tuple[str, str]) -> tuple[AIMessage, float] | None:
        """The cached reply to ``key`` and the latency it had when it was made, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value, latency_s FROM responses WHERE prompt = ? AND llm = ?", key
            ).fetchone()
        if row is None:
            return None
        [msg] = messages_from_dict([json.loads(row[0])])
        return (msg, float(row[1])) if isinstance(msg, AIMessage) else None

    def put(self, key: tuple[str, str], message: AIMessage, *, latency_s: float = 0.0) -> None:
        """Remember ``message`` as the reply to ``key``."""
        value = json.dumps(message_to_dict(message), default=str)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (*key, value, latency_s, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM responses").fetchone()[0])

    # LangChain's BaseCache interface (prompt, llm_string) -> generations.
    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """LangChain cache lookup: the generations cached for (prompt, llm_string)."""
        hit = self.get((prompt, llm_string))
        return None if hit is None else [ChatGeneration(message=hit[0])]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """LangChain cache update: remember the first chat generation."""
        for gen in return_val:
            if isinstance(gen, ChatGeneration) and isinstance(gen.message, AIMessage):
                self.put((prompt, llm_string), gen.message)
                return

    def export(self, path: str | Path) -> int:
        """Write every response to a gzipped JSON-lines file; return how many.

        The file is the portable form of the cache: it is byte-identical for the same
        responses (rows sorted by key, no name or time in the gzip header), so a benchmark's
        responses can be kept beside its report and a later run on another machine answered
        from them with :meth:`load`.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT prompt, llm, value, latency_s, created_at FROM responses ORDER BY llm, prompt"
            ).fetchall()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as gz:
            for prompt, llm, value, latency_s, created_at in rows:
                line = {"prompt": prompt, "llm": llm, "value": json.loads(value),
                        "latency_s": latency_s, "created_at": created_at}  # fmt: skip
                gz.write((json.dumps(line, sort_keys=True) + "\n").encode())
        return len(rows)

    def load(self, path: str | Path) -> int:
        """Add the responses of a file written by :meth:`export`; return how many were new.

        A response the cache already holds is kept as it is. The whole file is read and
        checked before anything is written, so a damaged file adds nothing.

        Raises:
            CacheFileError: the file is missing, not gzip, or a line is not a response
                (the message names the line).
        """
        rows = list(_read_export(Path(path)))
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)", rows
                )
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")  # a failed write leaves no transaction open
                raise
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def clear(self, **kwargs: Any) -> None:
        """Forget every response."""
        with self._lock:
            self._conn.execute("DELETE FROM responses")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()


class CacheFileError(TierflowError):
    """A response file that :meth:`ResponseCache.load` cannot read (it names the line)."""


def _read_export(path: Path) -> Iterable[tuple[str, str, str, float, float]]:
    if not path.is_file():
        raise CacheFileError(
            f"{path}: no such response file (write one with `tierflow cache export`)"
        )
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, text in enumerate(lines, 1):
                yield _export_row(path, number, text)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # not gzip, truncated
        raise CacheFileError(f"{path}: not a gzipped JSON-lines response file ({exc})") from exc


def _export_row(path: Path, number: int, text: str) -> tuple[str, str, str, float, float]:
    try:
        row = json.loads(text)
        [message] = messages_from_dict([row["value"]])
        if isinstance(message, AIMessage):
            return (str(row["prompt"]), str(row["llm"]), json.dumps(row["value"], default=str),
                    float(row.get("latency_s", 0.0)), float(row.get("created_at", 0.0)))  # fmt: skip
        why = f"the response is a {message.type} message, not an AI message"
    except (ValueError, KeyError, TypeError) as exc:
        raise _not_a_response(path, number, f"{type(exc).__name__}: {exc}") from exc
    raise _not_a_response(path, number, why)


def _not_a_response(path: Path, number: int, why: str) -> CacheFileError:
    return CacheFileError(
        f"{path}:{number}: not a cached response ({why}); each line needs prompt, llm and value "
        "(a message dict), as `tierflow cache export` writes"
    )


_OPEN: dict[str, ResponseCache] = {}
_OPEN_LOCK = threading.Lock()


def open_cache(path: str | Path | None) -> ResponseCache | None:
    """The process's cache for ``path`` (one connection per file), or None when no path."""
    if not path:
        return None
    key = str(Path(path).resolve())
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = ResponseCache(key)
        return _OPEN[key]


def paid_usd(records: Iterable[Mapping[str, Any]]) -> float:
    """Cost of the requests that reached a provider (cache hits excluded)."""
    return round(sum(r["cost_usd"] for r in records if not r.get("cached_response")), 10)
