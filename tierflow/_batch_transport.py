"""The HTTP side of a batched run: chat clients whose requests are answered from batch results.

Each tier gets its usual client (:func:`tierflow.models.chat_model`) with an HTTP transport of
its own in place of the network: a request whose line was answered by a batch gets that
answer (status and body, ``service_tier`` set to ``batch``); any other is held for the next
batch and waits until the run's round is cancelled (:mod:`tierflow.batch`). Holding rather
than failing keeps the run on the path it would take live: a failure would escalate.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai
from langchain_core.language_models import BaseChatModel

from tierflow._batch_api import BatchError
from tierflow._batch_book import BatchBook, Held, custom_id, line_body
from tierflow.config import TierConfig, TierSpec, public_url
from tierflow.models import chat_model

__all__ = ["JOB", "BatchTransport", "batch_models", "group_of", "BATCH_TIER"]

# The service tier a batch-answered request is recorded at (tierflow.batch prices it).
BATCH_TIER = "batch"
# The job (a run of one item) the current task belongs to; set per task by the round.
JOB: contextvars.ContextVar[Any] = contextvars.ContextVar("tierflow_batch_job")


def group_of(spec: TierSpec) -> str:
    """The batch a tier's requests go in: one per server, key and model (as the API requires)."""
    return f"{public_url(spec.base_url)}|{spec.api_key_env or ''}|{spec.model}"


class BatchTransport(httpx2.AsyncBaseTransport):
    """Answers chat completion requests from ``book``, or holds them (see the module doc).

    ``on_hold(job, cid)`` is told of each held request; a held request cancelled while
    ``cancelling()`` is False was cut by the tier's timeout, not the round: ``on_spoiled(job)``.
    """

    def __init__(
        self,
        book: BatchBook,
        group: str,
        on_hold: Callable[[Any, str], None],
        on_spoiled: Callable[[Any], None],
        cancelling: Callable[[], bool],
    ) -> None:
        self.book, self.group = book, group
        self.on_hold, self.on_spoiled, self.cancelling = on_hold, on_spoiled, cancelling

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """The batch's answer to ``request``, or wait (held) until the round is cancelled."""
        body = json.loads(await request.aread())
        line = line_body(body)
        cid = custom_id(line)
        known = self.book.answer(cid)
        if known is not None:
            status, payload = known
            if status == 200:
                payload = {**payload, "service_tier": BATCH_TIER}
            return httpx2.Response(status or 500, json=payload, request=request)
        job = JOB.get(None)
        if job is None:
            raise BatchError(
                "a batched model was called outside a batched round; run it through "
                "tierflow.batch.Batcher.run_jobs"
            )
        self.book.hold(cid, Held(self.group, line))
        self.on_hold(job, cid)
        try:
            await asyncio.Event().wait()  # until the round cancels this run
        except asyncio.CancelledError:
            if not self.cancelling():  # the tier's timeout, not the round: discard the run
                self.on_spoiled(job)
            raise
        raise AssertionError("unreachable")  # pragma: no cover


class _NoSync(httpx2.BaseTransport):
    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raise BatchError("batched runs call models asynchronously only (ainvoke, astream)")


def batch_models(config: TierConfig, make: Callable[[str], BatchTransport]) -> dict[str, Any]:
    """Each tier's chat client, its HTTP requests sent to ``make(group)``'s transport."""
    out: dict[str, BaseChatModel] = {}
    for name, spec in config.tiers.items():
        model: Any = chat_model(spec)
        params: dict[str, Any] = dict(base_url=public_url(spec.base_url), api_key=spec.api_key(),
                                      max_retries=0, timeout=spec.timeout_s)  # fmt: skip
        root = openai.AsyncOpenAI(
            **params, http_client=httpx2.AsyncClient(transport=make(group_of(spec)))
        )
        sync = openai.OpenAI(**params, http_client=httpx2.Client(transport=_NoSync()))
        # The batch's own pace: nothing is sent live, so no request waits on a rate limiter.
        model.root_async_client, model.async_client = root, root.chat.completions
        model.root_client, model.client = sync, sync.chat.completions
        model.rate_limiter = None
        out[name] = model
    return out
