"""What a batched run knows, kept in files: answered lines, lines held for a batch, batches sent.

``results.jsonl`` holds each answered line once (custom_id, HTTP status, body), appended as
batches end; ``state.json`` the batches created (id, server, custom_ids, whether their results
were read) and the attempts of lines that failed. A run that stopped (a crash, a timeout)
finds both in its state folder and goes on: lines answered before are answered from the file,
a batch still running is polled again, never created a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierflow._batch_api import Outcome

__all__ = ["BatchBook", "Held", "custom_id", "line_body"]

# Request fields a batch line does not carry: a batch answers whole (not streamed), at its
# own service tier.
_NOT_IN_LINE = ("stream", "stream_options", "service_tier")


def line_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a chat completion request as a batch line sends it."""
    return {k: v for k, v in body.items() if k not in _NOT_IN_LINE}


def custom_id(body: Mapping[str, Any]) -> str:
    """The line's custom_id: a hash of its body, so the same request is one line, once."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "tf-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Held:
    """A request waiting for a batch: its line body and the server group it goes to."""

    group: str
    body: dict[str, Any]


class BatchBook:
    """The answered lines, the held ones and the batches of one state folder (thread-safe).

    Args:
        folder: the state folder (created), e.g. ``.tierflow/batch/triage``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.answers: dict[str, Outcome] = {}
        self.held: dict[str, Held] = {}
        state = self._read_state()
        self.batches: list[dict[str, Any]] = state.get("batches", [])
        self.attempts: dict[str, int] = state.get("attempts", {})
        results = self.folder / "results.jsonl"
        if results.is_file():
            for text in results.read_text().splitlines():
                if text.strip():
                    row = json.loads(text)
                    self.answers[row["custom_id"]] = (int(row["status"]), row["body"])

    def _read_state(self) -> dict[str, Any]:
        path = self.folder / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def answer(self, cid: str) -> Outcome | None:
        """The outcome recorded for line ``cid``, or None."""
        return self.answers.get(cid)

    def hold(self, cid: str, held: Held) -> None:
        """Keep a request for the next batch (once, however many runs make it)."""
        with self._lock:
            self.held.setdefault(cid, held)

    def record(self, outcomes: Mapping[str, Outcome]) -> None:
        """Remember the outcomes, in memory and appended to ``results.jsonl``."""
        with self._lock:
            rows = [
                json.dumps({"custom_id": cid, "status": s, "body": b}, sort_keys=True) + "\n"
                for cid, (s, b) in outcomes.items()
            ]
            with open(self.folder / "results.jsonl", "a") as out:
                out.writelines(rows)
                out.flush()
                os.fsync(out.fileno())
            self.answers.update(outcomes)
            for cid in outcomes:
                self.held.pop(cid, None)

    def add_batch(self, entry: dict[str, Any]) -> None:
        """Remember a batch just created (before waiting for it)."""
        with self._lock:
            self.batches.append(entry)
        self.save()

    def open_batches(self) -> list[dict[str, Any]]:
        """Batches created whose results were not read yet (by this run or one before it)."""
        return [b for b in self.batches if not b.get("read")]

    def failed_attempt(self, cid: str) -> int:
        """Count one more failed attempt of line ``cid``; how many it has had."""
        with self._lock:
            self.attempts[cid] = self.attempts.get(cid, 0) + 1
            return self.attempts[cid]

    def save(self) -> None:
        """Write ``state.json`` (to a temporary file first, so a crash leaves the old one)."""
        with self._lock:
            text = json.dumps({"batches": self.batches, "attempts": self.attempts}, indent=1)
            tmp = self.folder / "state.json.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.folder / "state.json")
