"""An eval at Batch API prices: every (policy, item) of a suite run as a job of a Batcher.

All policies' items run together in :class:`tierflow.batch.Batcher` rounds, so a comparison
of four policies takes as many batches as its deepest run has steps, not four times that.
With a response cache the rounds run on a scratch copy of it (answers a round gets are
written there), then every item runs once more on the cache itself, answered by the batches
and the cache: its records are those a run without ``batch`` would have, each request
answered by a batch at service tier ``batch`` (priced at the tier's batch price).
"""

from __future__ import annotations

import contextlib
import contextvars
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tierflow.batch import Batcher, BatchSettings
from tierflow.config import default_profile, load_config
from tierflow.errors import InputError
from tierflow.evals._results import ExampleResult, Progress, SuiteResult
from tierflow.evals._suites import Suite, load_items
from tierflow.runtime import RunContext, TierPolicy

__all__ = ["abatched", "batching", "batch_settings", "BatchArg"]

Job = tuple[str, int]  # (policy name, item index)
BatchArg = BatchSettings | bool | None
# The batch settings of runs that name none (``tierflow eval --batch`` sets them for its run).
_BATCH: contextvars.ContextVar[BatchSettings | None] = contextvars.ContextVar(
    "tierflow_eval_batch", default=None
)


@contextlib.contextmanager
def batching(settings: BatchSettings | None) -> Iterator[None]:
    """Within the block, eval runs that pass no ``batch`` use ``settings`` (None: no batch).

    Example:
        >>> from tierflow.batch import BatchSettings
        >>> with batching(BatchSettings(poll_s=30)):
        ...     batch_settings(None).poll_s
        30
    """
    token = _BATCH.set(settings)
    try:
        yield
    finally:
        _BATCH.reset(token)


def batch_settings(batch: BatchArg) -> BatchSettings | None:
    """The settings ``batch`` asks for: its own, defaults (True), none (False), or the block's."""
    if batch is None:
        return _BATCH.get()
    if isinstance(batch, BatchSettings):
        return batch
    return BatchSettings() if batch else None


async def abatched(
    suite: str,
    policies: Sequence[str | TierPolicy],
    batch: BatchSettings,
    *,
    profile: str | None = None,
    models: Any = None,
    limit: int | None = None,
    budget_usd: float | None = None,
    retry: Any = None,
    progress: Any = None,
    split: str | None = None,
    response_cache: str | None = None,
    calibration: str | None = None,
) -> list[SuiteResult]:
    """Run ``suite`` under each policy with its requests sent as batches; one result each.

    Raises:
        InputError: test doubles were given (``models``): a batch goes to the tiers' servers.
    """
    from tierflow.evals._runner import PRICED_AT, _reporter, suite_named, unattended

    if models is not None:
        raise InputError(
            "batch sends the tiers' requests to their servers' Batch API, so it cannot run on "
            "test doubles (models=); pass one or the other"
        )
    spec = suite_named(suite)
    profile = profile or default_profile()
    config = load_config(profile)
    folder = batch.state_dir or config.data_dir / "batch" / suite
    batcher = Batcher(config, folder, batch)
    models = batcher.models()
    prices = load_config(PRICED_AT, require_keys=False)
    items = load_items(suite, limit, split)
    chosen = {p.name if isinstance(p, TierPolicy) else p: unattended(p) for p in policies}
    scratch_dir = Path(tempfile.mkdtemp(prefix="tierflow-batch-"))
    scratch = _scratch_copy(response_cache, scratch_dir)

    def contexts(cache: str | None) -> dict[str, RunContext]:
        return {name: RunContext(profile=profile, models=models, retry=retry, policy=p,
                                 response_cache=cache, calibration=calibration)
                for name, p in chosen.items()}  # fmt: skip

    runner = _Jobs(spec, items, budget_usd, prices)
    try:
        if response_cache is not None:  # the rounds, on a scratch copy of the cache
            await batcher.run_jobs(runner.jobs(contexts(scratch)))
        with _reporter(progress) as bar:
            report = _progress(suite, list(chosen), len(items), bar)
            done = await batcher.run_jobs(runner.jobs(contexts(response_cache)), report)
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    failed = len(batcher.failed_lines)
    resumed = f" (+{batcher.batches_resumed} resumed)" if batcher.batches_resumed else ""
    batcher.log(f"batch: {batcher.batches_created} batches{resumed}, {batcher.lines_sent} "
                f"requests, {batcher.rounds} rounds, {failed} failed lines; costs at Batch API "
                "prices (the tier's flex price, else half its price); latencies are the "
                f"replay's, not the provider's; state in {folder}")  # fmt: skip
    return [
        SuiteResult(suite=suite, policy=chosen[name].name, profile=profile,
                    examples=tuple(done[(name, i)] for i in range(len(items))))
        for name in chosen
    ]  # fmt: skip


class _Jobs:
    """The job of each (policy, item): ``make(round)`` runs the item on that round's graph."""

    def __init__(
        self, spec: Suite, items: list[dict[str, Any]], budget_usd: float | None, prices: Any
    ) -> None:
        self.spec, self.items, self.budget_usd, self.prices = spec, items, budget_usd, prices
        self._graphs: dict[int, Any] = {}

    def graph(self, round_no: int) -> Any:
        """A graph per round: a cut round's checkpoints go with its graph."""
        from tierflow.evals._runner import compile_suite

        if round_no not in self._graphs:
            self._graphs.clear()
            self._graphs[round_no] = compile_suite(self.spec)
        return self._graphs[round_no]

    def jobs(
        self, contexts: Mapping[str, RunContext]
    ) -> dict[Job, Callable[[int], Awaitable[ExampleResult]]]:
        """Every (policy, item) job under ``contexts`` (policy name -> context)."""
        return {
            (name, i): self._job(ctx, item)
            for name, ctx in contexts.items()
            for i, item in enumerate(self.items)
        }

    def _job(
        self, ctx: RunContext, item: Mapping[str, Any]
    ) -> Callable[[int], Awaitable[ExampleResult]]:
        from tierflow.evals._runner import _example

        def make(round_no: int) -> Awaitable[ExampleResult]:
            graph = self.graph(round_no)
            return _example(self.spec, graph, item, ctx, self.budget_usd, self.prices)

        return make


def _progress(
    suite: str, names: list[str], total: int, progress: Callable[[Progress], None]
) -> Callable[[Job, ExampleResult], None]:
    started, done, spent = time.monotonic(), Counter[str](), Counter[str]()

    def report(job: Job, result: ExampleResult) -> None:
        name = job[0]
        done[name] += 1
        spent[name] += result.cost_usd
        progress(Progress(suite, name, done[name], total, round(spent[name], 10),
                          time.monotonic() - started))  # fmt: skip

    return report


def _scratch_copy(cache: str | None, folder: Path) -> str | None:
    """A copy of the response cache file (an empty one when it has none yet), or None."""
    if cache is None:
        return None
    target = folder / "responses.sqlite"
    if Path(cache).is_file():
        with sqlite3.connect(cache) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        source.close()
        copy.close()
    return str(target)
