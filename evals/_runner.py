"""Run a suite: each item on a fresh InMemorySaver thread, interrupts answered, usage repriced."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, RetryPolicy

from tierflow.batch import batch_reprice
from tierflow.config import TierConfig, default_profile, load_config
from tierflow.errors import InputError
from tierflow.evals._batch_rounds import BatchArg, abatched, batch_settings, batching
from tierflow.evals._results import ExampleResult, Progress, SuiteResult
from tierflow.evals._suites import SUITES, Suite, load_items
from tierflow.evals._sync import run_sync
from tierflow.protocol import BudgetAction, InterruptKind, ReviewAction
from tierflow.registry import load_builder
from tierflow.runtime import POLICIES, RunContext, TierPolicy
from tierflow.usage import reprice

__all__ = [
    "arun", "acompare", "run", "compare", "resolve_policies", "progress_bar", "Progress",
    "MAX_RESUMES", "batching",
]  # fmt: skip

MAX_RESUMES = 8  # interrupt rounds answered per example before giving up
PRICED_AT = "openai"


def resolve_policies(names: Sequence[str], suite: str | None = None) -> list[str]:
    """Policy names, with ``all`` expanded (to the suite's policies when one is named).

    Raises:
        InputError: a name is not a known policy (the message lists them; also a ValueError).
    """
    out: list[str] = []
    every = list(SUITES[suite].policies) if suite in SUITES else list(POLICIES)
    for name in names:
        for item in every if name == "all" else [name]:
            if item not in POLICIES:
                raise InputError(
                    f"unknown policy {item!r}; choose from {sorted(POLICIES)} or 'all'"
                )
            if item not in out:
                out.append(item)
    return out


def suite_named(name: str) -> Suite:
    """The suite called ``name``; an InputError listing the known suites when there is none."""
    if name not in SUITES:
        raise InputError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    return SUITES[name]


def compile_suite(suite: Suite) -> Any:
    """The suite's graph, compiled on a fresh in-memory checkpointer."""
    return load_builder(suite.graph).compile(checkpointer=InMemorySaver())


def unattended(policy: str | TierPolicy) -> TierPolicy:
    """``policy`` with no human in the loop, as every eval runs."""
    # Nobody answers escalation-to-human interrupts in an eval: a task that fails on the top
    # tier fails, and a budget stop ends the task budget_exhausted without asking. Draft reviews
    # are still answered (see _resume_value).
    base = POLICIES[policy] if isinstance(policy, str) else policy
    return dataclasses.replace(base, human=False)


def _resume_value(payload: Any) -> Any:
    kind = payload.get("kind") if isinstance(payload, Mapping) else None
    if kind == InterruptKind.BUDGET:
        return {"action": BudgetAction.STOP.value}
    return {"action": ReviewAction.APPROVE.value}


async def drive(graph: Any, inp: dict[str, Any], cfg: dict[str, Any], ctx: RunContext) -> None:
    """Run one item to its end, answering its interrupts (at most MAX_RESUMES rounds)."""
    await graph.ainvoke(inp, cfg, context=ctx)
    for _ in range(MAX_RESUMES):
        pending = (await graph.aget_state(cfg)).interrupts
        if not pending:
            return
        answers = {item.id: _resume_value(item.value) for item in pending}
        await graph.ainvoke(Command(resume=answers), cfg, context=ctx)
    if (await graph.aget_state(cfg)).interrupts:
        raise RuntimeError(f"still interrupted after {MAX_RESUMES} rounds of answers")


def _serving_tiers(usage: list[dict[str, Any]], state: Mapping[str, Any]) -> dict[str, str]:
    if state.get("route") and state.get("tier"):
        # A cascade: each tier's attempt is a task of its own; the answer is the final tier's.
        names = {r["subagent"] for r in (state.get("results") or {}).values()}
        return dict.fromkeys(sorted(names), state["tier"])
    last: dict[tuple[str, str | None], str] = {}
    for rec in usage:
        last[(rec.get("subagent") or rec["node"], rec.get("task_id"))] = rec["tier"]
    votes: dict[str, Counter[str]] = {}
    for (name, _), tier in last.items():
        votes.setdefault(name, Counter())[tier] += 1
    return {name: c.most_common(1)[0][0] for name, c in sorted(votes.items())}


def _escalations(state: Mapping[str, Any]) -> int:
    results = state.get("results") or {}
    climbs = sum(
        len(r.get("escalations") or []) for r in results.values() if isinstance(r, Mapping)
    )
    # A cascade's verifier climbs between tasks (each tier's attempt is a task of its own,
    # carrying the history so far): count its rejections once, not in every later task.
    # A rejection sent back to its own tier (a repair) is no climb.
    rejected = sum(not a.get("ok") and not a.get("repair") for a in state.get("attempts") or [])
    return max(climbs, rejected) if state.get("attempts") is not None else climbs


async def _example(
    suite: Suite,
    graph: Any,
    item: Mapping[str, Any],
    ctx: RunContext,
    budget_usd: float | None,
    prices: TierConfig,
) -> ExampleResult:
    cfg = {"configurable": {"thread_id": f"eval-{suite.name}-{item['id']}-{uuid.uuid4().hex[:8]}"},
           "recursion_limit": 100}  # fmt: skip
    inp = suite.make_input(item)
    if budget_usd is not None:
        inp["budget_usd"] = budget_usd
    started, error = time.perf_counter(), None
    try:
        await drive(graph, inp, cfg, ctx)
    except Exception as exc:  # noqa: BLE001 - one broken example must not end the suite
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency = time.perf_counter() - started
    state = (await graph.aget_state(cfg)).values
    usage = [
        r.model_dump() for r in batch_reprice(reprice(state.get("usage") or [], prices), prices)
    ]
    scored = suite.score(item, state)
    return ExampleResult(
        id=str(item["id"]),
        quality=0.0 if error else scored.quality,
        scores=scored.scores,
        subagent_quality=scored.subagent_quality,
        cost_usd=round(sum(r["cost_usd"] for r in usage), 10),
        input_tokens=sum(r["input_tokens"] for r in usage),
        output_tokens=sum(r["output_tokens"] for r in usage),
        cached_tokens=sum(r["cached_tokens"] for r in usage),
        latency_s=round(latency, 4),
        model_latency_s=round(sum(r["latency_s"] for r in usage), 4),
        escalations=_escalations(state),
        subagent_tiers=_serving_tiers(usage, state),
        prediction=scored.prediction,
        error=error,
        usage=usage,
    )


async def arun(
    suite: str,
    policy: str | TierPolicy = "tiered",
    *,
    limit: int | None = None,
    profile: str | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    budget_usd: float | None = None,
    retry: RetryPolicy | None = None,
    progress: ProgressArg = None,
    split: str | None = None,
    response_cache: str | None = None,
    calibration: str | None = None,
    batch: BatchArg = None,
) -> SuiteResult:
    """Async :func:`run`."""
    spec = suite_named(suite)
    if isinstance(policy, str):
        [policy] = resolve_policies([policy], suite)
    profile = profile or default_profile()
    settings = batch_settings(batch)
    if settings is not None:
        return (await abatched(suite, [policy], settings, limit=limit, profile=profile,
                                models=models, budget_usd=budget_usd, retry=retry,
                                progress=progress, split=split, response_cache=response_cache,
                                calibration=calibration))[0]  # fmt: skip
    ctx = RunContext(profile=profile, models=models, retry=retry, policy=unattended(policy),
                     response_cache=response_cache, calibration=calibration)  # fmt: skip
    policy = ctx.policy.name
    prices = load_config(PRICED_AT, require_keys=False)
    graph = compile_suite(spec)
    items, examples, started = load_items(suite, limit, split), [], time.monotonic()
    with _reporter(progress) as report:
        for item in items:
            examples.append(await _example(spec, graph, item, ctx, budget_usd, prices))
            spent = round(sum(e.cost_usd for e in examples), 10)
            report(Progress(suite, policy, len(examples), len(items), spent,
                            time.monotonic() - started))  # fmt: skip
    return SuiteResult(
        suite=suite, policy=policy, profile=profile, examples=tuple(examples),
        scripted=models is not None,
    )  # fmt: skip


async def acompare(
    suite: str,
    policies: Sequence[str] = ("tiered", "all-flagship", "all-nano", "cascade"),
    **kwargs: Any,
) -> list[SuiteResult]:
    """Async :func:`compare`."""
    progress = kwargs.pop("progress", None)
    names = resolve_policies(policies, suite)
    settings = batch_settings(kwargs.pop("batch", None))
    with _reporter(progress) as report:  # one bar per policy, shown together
        if settings is not None:  # every policy's items in the same batches
            return await abatched(suite, names, settings, progress=report, **kwargs)
        return [await arun(suite, p, progress=report, **kwargs) for p in names]


ProgressArg = Callable[[Progress], None] | bool | None


@contextlib.contextmanager
def _reporter(progress: ProgressArg) -> Iterator[Callable[[Progress], None]]:
    """The callback for ``progress``: the caller's own, a rich bar (True), or nothing."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield lambda _p: None
        return
    with progress_bar() as bar:
        yield bar


@contextlib.contextmanager
def progress_bar(console: Any = None) -> Iterator[Callable[[Progress], None]]:
    """A rich progress bar per policy (examples done, spend, ETA); renders in notebooks too.

    Written to a file or a pipe (``tierflow eval ... > log``), where a live bar shows nothing
    until the end, it prints one plain line per policy at every twentieth of its examples.

    Example:
        >>> from tierflow.evals import compare, progress_bar
        >>> with progress_bar() as bar:  # doctest: +SKIP
        ...     compare("triage", ["tiered", "all-nano"], limit=5, progress=bar)
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    console = console or Console()
    if not (console.is_terminal or console.is_jupyter):  # a log file: lines, not a live bar
        yield _progress_lines(console)
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("${task.fields[spent]:.4f}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(),
    )  # fmt: skip
    with Bar(*columns, console=console, transient=False) as bar:
        tasks: dict[tuple[str, str], Any] = {}

        def report(p: Progress) -> None:
            key = (p.suite, p.policy)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{p.suite} {p.policy}", total=p.total, spent=0.0)
            bar.update(tasks[key], completed=p.done, spent=p.spent_usd)

        yield report


def _progress_lines(console: Any) -> Callable[[Progress], None]:
    def report(p: Progress) -> None:
        step = max(1, p.total // 20)
        if p.done % step and p.done != p.total:
            return
        eta = "-" if p.eta_s is None else _clock(p.eta_s)
        console.print(f"{p.suite} {p.policy}: {p.done}/{p.total} ${p.spent_usd:.4f} "
                      f"elapsed {_clock(p.elapsed_s)} ETA {eta}", soft_wrap=True)  # fmt: skip

    return report


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def run(
    suite: str,
    policy: str | TierPolicy = "tiered",
    *,
    limit: int | None = None,
    profile: str | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    budget_usd: float | None = None,
    retry: RetryPolicy | None = None,
    progress: ProgressArg = None,
    split: str | None = None,
    response_cache: str | None = None,
    calibration: str | None = None,
    batch: BatchArg = None,
) -> SuiteResult:
    """Run one suite under one tier policy.

    Every item runs on a fresh InMemorySaver thread with ``RunContext(profile, models,
    policy=POLICIES[policy])`` (escalation to a human switched off); draft reviews are approved
    and budget gates answered ``stop``. Cost is priced at the ``openai`` profile.

    Args:
        suite: ``codebase_qa``, ``triage`` or ``routing``.
        policy: a key of :data:`tierflow.runtime.POLICIES`.
        limit: the first ``limit`` dataset items (all when None).
        profile: tier profile to run on (default: ``openai`` with a key, else ``local``).
        models: tier -> chat model overrides (scripted doubles in tests).
        budget_usd: budget of each example's run (None: unlimited).
        retry: retry policy of model calls (tests pass one without backoff).
        progress: a callback taking a :class:`Progress` after each example, or True for a
            rich progress bar (examples done, spend, ETA) in a terminal or notebook.
        split: a benchmark's split (``calib`` or ``report``, the default).
        response_cache: SQLite file of the response cache: requests made before (by another
            policy, or an interrupted run) are answered from it (:mod:`tierflow.cache`).
        calibration: calibration file the graph loads (default: the graph's own, if any).
        batch: send the requests through the tiers' Batch API (True, or
            :class:`tierflow.batch.BatchSettings`), at batch prices, resumable
            (:mod:`tierflow.batch`); None: as set by :func:`batching` (default: no batch).

    Example:
        >>> from tierflow.evals import run
        >>> from tierflow.evals.scripted import models_for
        >>> r = run("routing", limit=2, profile="openai", models=models_for("routing"))
        >>> (r.n, r.quality)
        (2, 1.0)
    """
    return run_sync(arun(suite, policy, limit=limit, profile=profile, models=models,
                      budget_usd=budget_usd, retry=retry, progress=progress, split=split,
                      response_cache=response_cache, calibration=calibration,
                      batch=batch))  # fmt: skip


def compare(
    suite: str,
    policies: Sequence[str] = ("tiered", "all-flagship", "all-nano", "cascade"),
    **kwargs: Any,
) -> list[SuiteResult]:
    """:func:`run` the suite once per policy (``"all"`` expands to every policy).

    ``progress`` (a callback or True) works as in :func:`run`, one bar per policy. With
    ``batch``, every policy's items share the batches.
    """
    return run_sync(acompare(suite, policies, **kwargs))
