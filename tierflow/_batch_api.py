"""The OpenAI Batch API, through the ``openai`` client: upload JSONL, create, poll, read results.

One :class:`BatchAPI` per (base URL, key): ``submit`` uploads the lines as a ``purpose=batch``
file and creates a ``/v1/chat/completions`` batch over it (``completion_window="24h"``);
``wait`` polls ``GET /v1/batches/{id}`` with backoff until the batch ends (completed, failed,
expired or cancelled); ``outcomes`` reads its output and error files, line by line, keyed by
``custom_id``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import openai

from tierflow.errors import TierflowError

__all__ = ["BatchAPI", "BatchError", "Outcome", "ENDED", "ENDPOINT"]

ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
# Statuses a batch ends in; validating, in_progress, finalizing and cancelling are on the way.
ENDED = ("completed", "failed", "expired", "cancelled")

Outcome = tuple[int, dict[str, Any]]  # a line's HTTP status and body


class BatchError(TierflowError):
    """A batch that cannot go on: it failed validation, or did not end in time (it names it)."""


class BatchAPI:
    """The Batch API endpoints of one server (a loopback stand-in in tests).

    Args:
        base_url: the OpenAI-compatible base URL (``https://api.openai.com/v1``).
        api_key: the key to send.
        timeout_s: timeout of each HTTP request (not of the batch).
    """

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 120.0) -> None:
        self.base_url = base_url
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=3
        )

    async def upload(self, lines: Sequence[Mapping[str, Any]]) -> str:
        """Upload ``lines`` ({custom_id, body}) as a batch input file; its file id."""
        text = "".join(
            json.dumps({"custom_id": line["custom_id"], "method": "POST", "url": ENDPOINT,
                        "body": line["body"]}, sort_keys=True) + "\n"
            for line in lines
        )  # fmt: skip
        made = await self.client.files.create(
            file=("tierflow-batch.jsonl", text.encode(), "application/jsonl"), purpose="batch"
        )
        return made.id

    async def create(self, file_id: str, metadata: Mapping[str, str]) -> str:
        """Create a batch over an uploaded input file; the batch id."""
        made = await self.client.batches.create(
            input_file_id=file_id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata=dict(metadata),
        )
        return made.id

    async def wait(
        self,
        batch_id: str,
        *,
        poll_s: float,
        max_poll_s: float,
        timeout_s: float,
        log: Callable[[str], None],
    ) -> Any:
        """Poll the batch until it ends, every ``poll_s`` growing x1.5 up to ``max_poll_s``.

        Raises:
            BatchError: it has not ended after ``timeout_s`` (it goes on: run again to resume).
        """
        deadline, delay, seen = time.monotonic() + timeout_s, poll_s, ""
        while True:
            batch = await self.client.batches.retrieve(batch_id)
            counts = batch.request_counts
            shown = f"batch {batch_id}: {batch.status}" + (
                f" {counts.completed + counts.failed}/{counts.total}" if counts else ""
            )
            if shown != seen:
                log(shown)
                seen = shown
            if batch.status in ENDED:
                return batch
            if time.monotonic() + delay > deadline:
                raise BatchError(
                    f"batch {batch_id} is still {batch.status} after {timeout_s:g} s; it goes on "
                    "at the provider: run the same command again to resume waiting for it"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, max_poll_s)

    async def outcomes(self, batch: Any) -> dict[str, Outcome]:
        """Each answered line's (status, body) by custom_id, from the output and error files.

        A line in the error file without a response (e.g. ``batch_expired``) gets status 0.
        """
        out: dict[str, Outcome] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for text in content.text.splitlines():
                if text.strip():
                    cid, outcome = _outcome(json.loads(text))
                    out[cid] = outcome
        return out

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


def _outcome(line: Mapping[str, Any]) -> tuple[str, Outcome]:
    """(custom_id, (status, body)) of one output or error file line."""
    response = line.get("response") or {}
    error = line.get("error")
    status = int(response.get("status_code") or 0)
    body = response.get("body")
    if not isinstance(body, dict):
        body = {"error": error or {"message": "no response body"}}
    if error and status == 200:  # an error beside a 200 is still an error
        status, body = 0, {"error": error}
    return str(line["custom_id"]), (status, body)
