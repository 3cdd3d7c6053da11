"""Side effects that must happen once: deliveries keyed by an idempotency key.

A node can run more than once: after a crash, on another replica (at-least-once), or when an
interrupt resumes it. Anything it does outside the graph's state must therefore carry a key
that names the effect, so the receiver can tell a repeat from a new request. :func:`deliver`
sends one message to an outbox, either

- a file path: a JSON-lines file; under an exclusive lock, a key already in the file is not
  written again (the first receipt is returned, ``duplicate: true``), or
- an ``http(s)://`` URL: a JSON ``POST`` with the key in the ``Idempotency-Key`` header, the
  convention payment and mail APIs honour (the receiver deduplicates).

Triage delivers each approved reply this way (``outbox`` in its input), keyed by run and ticket.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tierflow.errors import TierflowError

__all__ = ["deliver", "DeliveryError", "read_outbox"]


class DeliveryError(TierflowError):
    """A message could not be delivered (the outbox is unreachable or refused it)."""


def _file_send(path: Path, key: str, message: Mapping[str, Any]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one writer at a time, across processes
        try:
            fh.seek(0)
            for line in fh:
                if line.strip():
                    entry = json.loads(line)
                    if entry.get("key") == key:
                        return {"key": key, "sent_at": entry["sent_at"], "duplicate": True}
            entry = {"key": key, "sent_at": round(time.time(), 3), "message": dict(message)}
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
            return {"key": key, "sent_at": entry["sent_at"], "duplicate": False}
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_outbox(path: Path | str) -> list[dict[str, Any]]:
    """Every entry of a file outbox, in the order written."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


async def deliver(outbox: str, key: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """Send ``message`` to ``outbox`` once per ``key``; the receipt says where and whether new.

    Raises:
        DeliveryError: the outbox is unreachable or answered with an error.
    """
    if outbox.startswith(("http://", "https://")):
        import httpx

        try:
            async with httpx.AsyncClient(timeout=30) as client:
                resp = await client.post(
                    outbox, json=dict(message), headers={"Idempotency-Key": key}
                )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"could not deliver {key} to {outbox}: {exc}") from exc
        if resp.status_code >= 400:
            raise DeliveryError(
                f"{outbox} refused {key}: HTTP {resp.status_code} {resp.text[:300]}"
            )
        return {"key": key, "sent_at": round(time.time(), 3), "status": resp.status_code}
    try:
        return await asyncio.to_thread(_file_send, Path(outbox), key, message)
    except OSError as exc:
        raise DeliveryError(f"could not write {key} to the outbox file {outbox}: {exc}") from exc
