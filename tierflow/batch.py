"""Run many graph runs at OpenAI Batch API prices: in rounds, each round's new requests one batch.

A graph run makes one request after another (a later request depends on an earlier answer),
so a batch cannot hold a run's requests up front. :class:`Batcher` runs every job (one item
of an eval, say) at once, on chat clients that answer from batch results
(:mod:`tierflow._batch_transport`): a job runs until it makes a request no batch has answered
yet, which is held. When every job is done or held, the round is cancelled, the held
requests go out as one batch per model (``POST /v1/files``, ``POST /v1/batches``), the batch
is polled to its end, and its lines are matched back by ``custom_id``. The next round runs
the unfinished jobs again from the start: what was answered is answered again at once, and
each job gets one request further. A job that finished without holding anything is done;
its requests are recorded at service tier ``batch`` and priced by :func:`batch_price`.

Answers and batches are kept in a state folder (``<data_dir>/batch/<name>``, see
:mod:`tierflow._batch_book`), so a run that crashed resumes: it polls the batch it had
created instead of creating another. A failed line is sent again in the next batch
(``line_retries`` times); after that the request fails as the line did (its status and error),
as a live request would, and the line is counted in :attr:`Batcher.failed_lines`.

Example:
    >>> from tierflow.batch import batch_price
    >>> from tierflow.config import load_config
    >>> batch_price(load_config("openai", require_keys=False).tier("nano")).input
    0.1
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tierflow._batch_api import BatchAPI, BatchError, Outcome
from tierflow._batch_book import BatchBook
from tierflow._batch_transport import BATCH_TIER, JOB, BatchTransport, batch_models, group_of
from tierflow.config import Price, TierConfig, TierSpec, public_url
from tierflow.pricing import cost_usd
from tierflow.usage import UsageRecord

__all__ = ["BatchSettings", "Batcher", "BatchError", "batch_price", "batch_reprice", "BATCH_TIER"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class BatchSettings:
    """How a batched run waits and retries.

    Attributes:
        state_dir: folder of its state (default ``<data_dir>/batch/<name>``); the same folder
            resumes a run that stopped.
        poll_s: first wait between polls of a batch, growing x1.5 up to ``max_poll_s``.
        max_poll_s: longest wait between polls.
        timeout_s: how long to wait for one batch before giving up (it goes on at the
            provider; the next run with the same state folder waits for it again).
        line_retries: times a failed line is sent again before its request fails.
        settle_s: quiet time after the last held request before a round is cut.
        log: where progress lines go (batch ids, statuses, counts).
    """

    state_dir: Path | None = None
    poll_s: float = 5.0
    max_poll_s: float = 60.0
    timeout_s: float = 25 * 3600.0
    line_retries: int = 1
    settle_s: float = 0.1
    log: Callable[[str], None] | None = field(default=None, compare=False)


def batch_price(spec: TierSpec) -> Price:
    """A tier's Batch API price: its ``flex_price`` (OpenAI's flex price), else half its price."""
    if spec.flex_price is not None:
        return spec.flex_price
    return Price(**{k: getattr(spec.price, k) / 2 for k in Price.model_fields})


def batch_reprice(records: Iterable[UsageRecord], config: TierConfig) -> list[UsageRecord]:
    """The records, those served by a batch (service tier ``batch``) at ``config``'s batch price."""
    out = []
    for rec in records:
        spec = config.tiers.get(rec.tier)
        if rec.service_tier == BATCH_TIER and spec is not None:
            cost = cost_usd(batch_price(spec), input_tokens=rec.input_tokens,
                            cached_tokens=rec.cached_tokens, output_tokens=rec.output_tokens)  # fmt: skip
            rec = rec.model_copy(update={"cost_usd": cost})
        out.append(rec)
    return out


class Batcher:
    """Runs jobs in rounds, each round's new requests sent as batches (see the module doc).

    Args:
        config: the profile whose tiers the jobs call (their servers take the batches).
        folder: the state folder.
        settings: waits and retries.
    """

    def __init__(self, config: TierConfig, folder: str | Path, settings: BatchSettings) -> None:
        self.config, self.settings = config, settings
        self.book = BatchBook(folder)
        self.log = settings.log or (lambda _line: None)
        self.rounds = self.batches_created = self.batches_resumed = self.lines_sent = 0
        self._created: set[str] = set()
        self.failed_lines: list[str] = []
        self._groups = {group_of(s): s for s in config.tiers.values()}
        self._held: set[Any] = set()
        self._spoiled: set[Any] = set()
        self._cancelling = False
        self._quiet_since = time.monotonic()
        # A held request waits inside the tier's timeout: cut the round well before it.
        self._hold_cap = 0.5 * min(s.timeout_s for s in config.tiers.values())
        self._first_hold: float | None = None

    def models(self) -> dict[str, Any]:
        """Tier -> chat model answering from this batcher's batches (``RunContext(models=...)``)."""

        def transport(group: str) -> BatchTransport:
            # Late-bound: each round has sets of its own.
            return BatchTransport(self.book, group, self._on_hold,
                                  lambda job: self._spoiled.add(job), lambda: self._cancelling)  # fmt: skip

        return batch_models(self.config, transport)

    def _on_hold(self, job: Any, cid: str) -> None:
        self._held.add(job)
        self._quiet_since = time.monotonic()
        self._first_hold = self._first_hold or self._quiet_since

    async def run_jobs(
        self,
        jobs: Mapping[K, Callable[[int], Awaitable[T]]],
        on_done: Callable[[K, T], None] | None = None,
    ) -> dict[K, T]:
        """Run every job to its end in rounds; each job's result.

        A job is ``make(round)`` -> awaitable; it is started again in each round until it ends
        without a held request. An exception a job raises ends the whole run.

        Raises:
            BatchError: a batch failed validation or did not end in time, or rounds stopped
                making progress.
        """
        await self._settle_open()
        done: dict[K, T] = {}
        stuck = 0
        while len(done) < len(jobs):
            self.rounds += 1
            todo = {k: make for k, make in jobs.items() if k not in done}
            finished = await self._round(todo)
            for key, value in finished.items():
                done[key] = value
                if on_done is not None:
                    on_done(key, value)
            if len(done) == len(jobs):
                break
            sent = await self.settle()
            stuck = 0 if (sent or finished) else stuck + 1
            if stuck >= 3:
                raise BatchError(
                    f"{len(jobs) - len(done)} jobs neither end nor make new requests after "
                    f"{self.rounds} rounds; a job that takes longer than settle_s="
                    f"{self.settings.settle_s:g} s between requests needs a longer one"
                )
        return {k: done[k] for k in jobs}

    async def _round(self, jobs: Mapping[K, Callable[[int], Awaitable[T]]]) -> dict[K, T]:
        """One round: start every job, cut them once all are held; the ones that ended."""
        self._held, self._spoiled, self._cancelling = set(), set(), False
        self._quiet_since, self._first_hold = time.monotonic(), None
        tasks: dict[K, asyncio.Task[T]] = {}
        for key, make in jobs.items():
            ctx = contextvars.copy_context()
            ctx.run(JOB.set, key)
            tasks[key] = asyncio.create_task(_awaited(make(self.rounds)), context=ctx)
        ended: set[K] | None = None  # the jobs that ended before the round was cut
        while running := [t for t in tasks.values() if not t.done()]:
            await asyncio.wait(running, timeout=self.settings.settle_s)
            if self._should_cut({k for k, t in tasks.items() if not t.done()}):
                self._cancelling = True
                ended = {k for k, t in tasks.items() if t.done()}
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
        out: dict[K, T] = {}
        for key, task in tasks.items():
            cut = ended is not None and key not in ended
            if cut or task.cancelled() or key in self._spoiled or key in self._held:
                continue
            out[key] = task.result()  # a job's own error is raised here
        return out

    def _should_cut(self, unfinished: set[Any]) -> bool:
        now = time.monotonic()
        if not unfinished:
            return False
        if unfinished <= self._held and now - self._quiet_since >= self.settings.settle_s:
            return True
        return self._first_hold is not None and now - self._first_hold >= self._hold_cap

    async def settle(self) -> int:
        """Send the held requests as batches (one per model), wait, record; lines sent."""
        held = {cid: h for cid, h in self.book.held.items() if self.book.answer(cid) is None}
        by_group: dict[str, list[dict[str, Any]]] = {}
        for cid, h in sorted(held.items()):
            by_group.setdefault(h.group, []).append({"custom_id": cid, "body": h.body})
        for group, lines in by_group.items():
            await self._create(group, lines)
        await self._settle_open()
        self.book.held.clear()
        return sum(len(lines) for lines in by_group.values())

    async def _create(self, group: str, lines: list[dict[str, Any]]) -> None:
        api = self._api(group)
        try:
            file_id = await api.upload(lines)
            batch_id = await api.create(file_id, {"tierflow": self.book.folder.name[:500]})
        finally:
            await api.close()
        self.batches_created += 1
        self._created.add(batch_id)
        self.lines_sent += len(lines)
        self.book.add_batch({"id": batch_id, "group": group, "input_file_id": file_id,
                             "custom_ids": [line["custom_id"] for line in lines]})  # fmt: skip
        self.log(f"batch {batch_id}: {len(lines)} requests to {group.split('|')[-1]}")

    def _api(self, group: str) -> BatchAPI:
        spec = self._groups.get(group)
        if spec is None:
            raise BatchError(
                f"batch group {group} is no tier of profile {self.config.profile}; resume with "
                f"the profile that created it, or remove {self.book.folder}/state.json"
            )
        return BatchAPI(public_url(spec.base_url), spec.api_key())

    async def _settle_open(self) -> None:
        """Wait for every batch not yet read (this run's, or one a stopped run left) and read it."""
        opened = self.book.open_batches()
        self.batches_resumed += sum(e["id"] not in self._created for e in opened)
        if opened:
            await asyncio.gather(*(self._read(entry) for entry in opened))

    async def _read(self, entry: dict[str, Any]) -> None:
        api = self._api(entry["group"])
        s = self.settings
        try:
            batch = await api.wait(entry["id"], poll_s=s.poll_s, max_poll_s=s.max_poll_s,
                                   timeout_s=s.timeout_s, log=self.log)  # fmt: skip
            if batch.status == "failed":
                errors = [e.message for e in (batch.errors.data or [])] if batch.errors else []
                entry.update(read=True, status=batch.status)
                self.book.save()
                raise BatchError(
                    f"batch {entry['id']} failed validation: {'; '.join(map(str, errors)) or '?'}"
                    f"; fix the request and run again, or remove {self.book.folder}"
                )
            outcomes = await api.outcomes(batch)
        finally:
            await api.close()
        self.book.record(self._kept(entry, batch, outcomes))
        entry.update(read=True, status=batch.status)
        self.book.save()

    def _kept(self, entry: Mapping[str, Any], batch: Any, got: Mapping[str, Outcome]) -> dict:
        """The outcomes to keep: answers, and failures that used up their retries."""
        kept: dict[str, Outcome] = {}
        for cid in entry["custom_ids"]:
            status, body = got.get(cid) or (0, {"error": {"message": f"not run: {batch.status}"}})
            if status == 200:
                kept[cid] = (status, body)
                continue
            if self.book.failed_attempt(cid) <= self.settings.line_retries:
                continue  # held again by the next round, sent in the next batch
            message = (
                (body.get("error") or {}).get("message", "?") if isinstance(body, dict) else "?"
            )
            note = f"batch line {cid} of {entry['id']} failed ({status or batch.status}): {message}"
            self.failed_lines.append(note)
            self.log(note)
            kept[cid] = (status if status >= 400 else 503, {"error": {"message": note}})
        return kept


async def _awaited(value: Awaitable[T]) -> T:
    return await value
