"""The one path every model request takes: budget check, retries, fallbacks, usage record.

A node makes at most one :func:`call_model` per execution, so an interrupt (budget, human)
never replays a request that was already paid for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.config import get_stream_writer
from langgraph.types import RetryPolicy, interrupt
from langsmith.utils import tracing_is_enabled

from tierflow._memo import IdentityMemo
from tierflow.breaker import BREAKERS
from tierflow.budget import MIN_OUTPUT_TOKENS, Ledger, Reservation, ledger_for, run_id_of
from tierflow.config import TierSpec, public_url
from tierflow.errors import CircuitOpenError, ModelCallError
from tierflow.pricing import cost_usd
from tierflow.protocol import BudgetAction, InterruptKind, RunStatus, StreamEvent
from tierflow.runtime import Engine, transient_retry_policy
from tierflow.tiers import TierPolicy, cheaper_tier
from tierflow.tracing import price_metadata

__all__ = ["CallSite", "CallOutcome", "call_model", "emit", "BUDGET_OPTIONS", "tool_dicts"]

BUDGET_OPTIONS = tuple(a.value for a in BudgetAction)


@dataclass(frozen=True)
class CallSite:
    """Who is calling: recorded on every usage record and trace."""

    node: str
    tier: str
    subagent: str | None = None
    task_id: str | None = None
    escalation_reason: str | None = None


@dataclass
class CallOutcome:
    """Result of :func:`call_model`.

    ``message`` is None when the budget gate stopped the call: ``stopped`` is then
    ``"stopped"`` (a human chose stop) or ``"budget_exhausted"`` (the declared unattended
    policy, or a retry the budget left could not pay). ``records`` must be returned in the
    node's state update under ``usage``.
    """

    message: AIMessage | None
    records: list[dict[str, Any]]  # UsageRecord fields, as they are kept in state
    tier: str
    budget_usd: float | None
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)

    def state_update(self) -> dict[str, Any]:
        """The ``usage`` / ``budget_usd`` part of a node's update."""
        update: dict[str, Any] = {"usage": self.records}
        if self.budget_usd is not None:
            update["budget_usd"] = self.budget_usd
        return update


_tool_dict: IdentityMemo[dict[str, Any]] = IdentityMemo(convert_to_openai_tool)


def tool_dicts(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI tool dicts of ``tools``, converted once per tool object (schemas are reused)."""
    return [
        tool if isinstance(tool, dict) and tool.get("type") == "function" else _tool_dict(tool)
        for tool in tools
    ]


def emit(event: dict[str, Any]) -> None:
    """Send a progress event to the run's custom stream (best effort: never breaks a run)."""
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001
        pass


@dataclass
class _Gate:
    """What the budget gate decided before the first request."""

    tier: str
    reservation: Reservation | None
    budget_usd: float | None = None
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)


async def _budget_gate(
    engine: Engine,
    site: CallSite,
    ledger: Ledger,
    policy: TierPolicy,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
) -> _Gate:
    """Reserve the call's worst case, or apply the budget policy (ask a human, stop, step down)."""
    gate = _Gate(site.tier, None)
    problem: str | None = None
    while True:
        spec = engine.config.tier(gate.tier)
        gate.reservation = await _reserve(ledger, spec, messages, tools)
        if gate.reservation is not None:
            return gate
        action = policy.budget_action()
        if action is not None:
            return await _unattended_step(engine, site, gate, action, ledger, messages, tools)
        decision = interrupt(_budget_question(engine, site, gate.tier, ledger, problem, spec))
        try:
            action, value = _parse_budget_decision(decision)
        except ValueError as exc:
            # Ask again rather than raise: a raised resume value would be replayed forever.
            problem = str(exc)
            continue
        problem = None
        if action == BudgetAction.STOP:
            gate.notes.append("stopped at the budget gate by a human")
            gate.stopped = RunStatus.STOPPED.value
            return gate
        if action == BudgetAction.RAISE:
            gate.budget_usd = value
            ledger.raise_budget(value)
            gate.notes.append(f"budget raised to ${value:.6f}")
            continue
        cheaper = cheaper_tier(gate.tier, engine.config)
        if cheaper is None:
            gate.notes.append(f"no tier is cheaper than {gate.tier}; asking again")
        else:
            gate.notes.append(f"continuing on cheaper tier {cheaper} instead of {gate.tier}")
            gate.tier = cheaper


async def _reserve(
    ledger: Ledger,
    spec: TierSpec,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
) -> Reservation | None:
    """Reserve, waiting while sibling requests are in flight.

    In-flight requests usually cost far less than their reservations, so what is left is
    only known once they settle.
    """
    while (
        reservation := await ledger.areserve(spec, messages, tools)
    ) is None and ledger.in_flight:
        await asyncio.sleep(_SETTLE_POLL_S)
    return reservation


_SETTLE_POLL_S = 0.01


async def _unattended_step(
    engine: Engine,
    site: CallSite,
    gate: _Gate,
    action: BudgetAction,
    ledger: Ledger,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
) -> _Gate:
    """The declared budget policy: step down while a cheaper tier fits, else stop."""
    tier: str | None = gate.tier
    if action == BudgetAction.CHEAPER:
        while (tier := cheaper_tier(str(tier), engine.config)) is not None:
            gate.reservation = await ledger.areserve(engine.config.tier(tier), messages, tools)
            if gate.reservation is not None:
                gate.notes.append(f"budget: continuing on tier {tier} instead of {gate.tier}")
                gate.tier = tier
                return gate
    gate.stopped = RunStatus.BUDGET_EXHAUSTED.value
    gate.notes.append(
        f"budget exhausted: ${ledger.spent_usd:.6f} of ${ledger.budget_usd or 0:.6f} spent; "
        f"the next {site.node} call on tier {gate.tier} does not fit"
    )
    return gate


def _budget_question(
    engine: Engine,
    site: CallSite,
    tier: str,
    ledger: Ledger,
    problem: str | None,
    spec: TierSpec,
) -> dict[str, Any]:
    remaining = ledger.remaining_usd() or 0.0
    return {
        "kind": InterruptKind.BUDGET.value,
        "error": problem,
        "task_id": site.task_id,
        "question": (
            f"The next call ({site.node}, tier {tier}) cannot fit in the budget left "
            f"(${remaining:.6f}; it needs room for its input and at least "
            f"{MIN_OUTPUT_TOKENS} output tokens); ${ledger.spent_usd:.6f} of "
            f"${ledger.budget_usd or 0:.6f} is spent."
        ),
        "node": site.node,
        "subagent": site.subagent,
        "tier": tier,
        "spent_usd": ledger.spent_usd,
        "budget_usd": ledger.budget_usd,
        "remaining_usd": remaining,
        "cheaper_tier": cheaper_tier(tier, engine.config),
        "options": list(BUDGET_OPTIONS),
        "resume_with": {"action": "raise|cheaper|stop", "budget_usd": "new total (raise)"},
    }


def _parse_budget_decision(decision: Any) -> tuple[BudgetAction, float]:
    if isinstance(decision, str):
        decision = {"action": decision}
    if not isinstance(decision, Mapping) or decision.get("action") not in BUDGET_OPTIONS:
        raise ValueError(
            f"budget interrupt resumed with {decision!r}; resume with "
            "{'action': 'raise', 'budget_usd': 1.0}, {'action': 'cheaper'} or {'action': 'stop'}"
        )
    action = BudgetAction(str(decision["action"]))
    try:
        value = float(decision.get("budget_usd") or 0.0)
    except (TypeError, ValueError):
        raise ValueError("'budget_usd' must be a number (the new total budget)") from None
    if action == BudgetAction.RAISE and value <= 0:
        raise ValueError("a budget raise needs a positive 'budget_usd' (the new total)")
    return action, value


def _record(
    engine: Engine,
    site: CallSite,
    tier: str,
    endpoint: str,
    model: str,
    started: float,
    msg: AIMessage | None,
    error: BaseException | None,
    run_id: str | None,
    charge_usd: float | None = None,
) -> dict[str, Any]:
    """The UsageRecord of one attempt, as the plain dict that state keeps (every field set)."""
    usage: Any = (msg.usage_metadata if msg is not None else None) or {}
    inp = int(usage.get("input_tokens") or 0)
    out = int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_token_details") or {}).get("cache_read") or 0)
    spec = engine.config.tier(tier)
    cost = cost_usd(spec.price, input_tokens=inp, cached_tokens=cached, output_tokens=out)
    # A dict with UsageRecord's fields (a unit test checks it validates and round-trips):
    # building and dumping a model per call would only cost time.
    return dict(
        id=uuid.uuid4().hex,
        node=site.node,
        subagent=site.subagent,
        task_id=site.task_id,
        tier=tier,
        model=model,
        endpoint=public_url(endpoint),
        input_tokens=inp,
        cached_tokens=cached,
        output_tokens=out,
        latency_s=round(time.monotonic() - started, 4),
        cost_usd=cost if charge_usd is None else charge_usd,
        billing="reported" if charge_usd is None else "estimated",
        error=None
        if error is None
        else _describe(error, spec.timeout_s).replace(endpoint, public_url(endpoint)),
        escalation_reason=site.escalation_reason,
        # Wall-clock start of the request (latency_s is measured on the monotonic clock).
        started_at=round(time.time() - (time.monotonic() - started), 4),
        run_id=run_id,
        cached_response=False,
    )


def _maybe_billed(exc: BaseException) -> bool:
    """Failures after which the server may have done (and billed) the work."""
    import httpx
    import openai

    billed = (
        TimeoutError,
        asyncio.TimeoutError,
        openai.APITimeoutError,
        openai.APIConnectionError,
        httpx.TimeoutException,
        httpx.RemoteProtocolError,
        ConnectionError,
    )
    return isinstance(exc, billed)


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _gate(spec: TierSpec) -> contextlib.AbstractAsyncContextManager[Any]:
    """Limit requests in flight per tier (or per ``concurrency_group``) in this process."""
    if not spec.max_concurrency:
        return contextlib.nullcontext()
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    key = spec.concurrency_group or spec.name
    if key not in gates:
        gates[key] = asyncio.Semaphore(spec.max_concurrency)
    return gates[key]


def _describe(error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"TimeoutError: no answer within the tier's timeout of {timeout_s:g} s"
    return f"{type(error).__name__}: {error}"[:500]


# A server's Retry-After is honoured up to this many seconds (a longer wait is the next tier's).
MAX_RETRY_AFTER_S = 60.0


def _backoff(policy: RetryPolicy, attempt: int, exc: BaseException | None = None) -> float:
    """The wait before the next attempt: the server's Retry-After if it sent one, else backoff."""
    delay = min(
        policy.max_interval, policy.initial_interval * policy.backoff_factor ** (attempt - 1)
    )
    asked = _retry_after(exc)
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER_S)
    return delay + (random.uniform(0, 1) if policy.jitter else 0)


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds from a 429/503 response's ``Retry-After`` header (seconds form), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = float(headers.get("retry-after-ms") or "nan") / 1000
        if value == value:  # not NaN
            return max(0.0, value)
        return max(0.0, float(headers.get("retry-after")))
    except (TypeError, ValueError):
        return None


async def call_model(
    engine: Engine,
    site: CallSite,
    state: Mapping[str, Any],
    messages: Sequence[BaseMessage],
    *,
    tools: Sequence[Any] = (),
    tool_choice: str | None = None,
    retry: RetryPolicy | None = None,
    policy: TierPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
) -> CallOutcome:
    """Make one model request for ``site`` under the run's budget.

    ``params`` are sampling parameters of this request (``temperature``, ``seed``), over the
    tier's own (temperature 0). With a response cache on the engine (``RunContext.response_cache``)
    a request made before with the same model, messages, tools and parameters is answered from
    it (see :mod:`tierflow.cache`). ``max_tokens`` caps this request's output below the tier's
    ``max_output_tokens`` (a one-letter answer needs a few tokens, not 512).

    The budget gate reserves the request's worst case first, with ``max_tokens`` clamped to
    what the budget left can pay; when nothing useful fits it asks a human, or follows
    ``policy.on_budget`` in unattended runs. Transient errors are retried with backoff
    (LangGraph's RetryPolicy values, transient-only ``retry_on``), then the tier's fallback
    endpoints are tried. Every attempt, failed or not, becomes a UsageRecord; an attempt that
    timed out or lost its connection is charged at its reservation (``billing="estimated"``).

    Raises:
        ModelCallError: the request failed on every endpoint, or failed for a non-transient reason.
    """
    offered = tool_dicts(tools)
    ledger = ledger_for(state)
    gate = await _budget_gate(engine, site, ledger, policy or TierPolicy(), messages, offered)
    if gate.stopped or gate.reservation is None:
        return CallOutcome(None, [], gate.tier, gate.budget_usd, gate.stopped, gate.notes)
    tier, spec = gate.tier, engine.config.tier(gate.tier)
    if max_tokens is not None and gate.reservation.max_tokens > max_tokens:
        gate.reservation = dataclasses.replace(gate.reservation, max_tokens=max(1, max_tokens))
    cache_key = None
    if engine.cache is not None:
        cache_key = engine.request_key(tier, messages, offered, tool_choice,
                                       {**(params or {}), "max_tokens": gate.reservation.max_tokens})  # fmt: skip
        hit = await _cached(engine, site, ledger, gate, cache_key, run_id_of(state))
        if hit is not None:
            return hit
    attempts = retry or transient_retry_policy(spec.max_retries)
    if retry is not None:
        attempts = attempts._replace(retry_on=transient_retry_policy(0).retry_on)
    run_id = run_id_of(state)
    records: list[dict[str, Any]] = []
    last_error: BaseException | None = None
    reservation: Reservation | None = gate.reservation
    try:
        for endpoint in engine.endpoints(tier):
            model_name = endpoint.model or spec.model
            runnable = engine.bound(tier, endpoint, offered, tool_choice)
            circuit = (endpoint.base_url, model_name)
            for attempt in range(1, attempts.max_attempts + 1):
                if not BREAKERS.allow(circuit):
                    # Open after consecutive failures (by any call of this process): go on
                    # to the next endpoint, then the next tier, without waiting on this one.
                    last_error = CircuitOpenError(public_url(endpoint.base_url), model_name)
                    emit({"event": StreamEvent.ENDPOINT_SKIPPED.value, "node": site.node, "tier": tier,
                           "error": str(last_error)})  # fmt: skip
                    break
                if reservation is None:
                    # A retry must fit in what is left too; it cannot ask a human now, since
                    # an interrupt here would replay the attempts already paid for.
                    reservation = await ledger.areserve(spec, messages, offered)
                    if reservation is None:
                        note = f"budget exhausted before retrying {site.node} on tier {tier}"
                        return CallOutcome(
                            None, records, tier, gate.budget_usd, RunStatus.BUDGET_EXHAUSTED.value,
                            [*gate.notes, note],
                        )  # fmt: skip
                started = time.monotonic()
                trace = _trace_config(site, tier, model_name, endpoint.base_url, ledger, spec)
                kwargs = {**engine.request_kwargs(tier, endpoint, reservation.max_tokens),
                          **(params or {})}  # fmt: skip
                try:
                    async with _gate(spec):
                        # The timeout starts once the request may run, not while it queues.
                        started = time.monotonic()
                        async with asyncio.timeout(spec.timeout_s):  # no extra task per call
                            msg = await runnable.ainvoke(list(messages), config=trace, **kwargs)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001
                    last_error = exc
                    charge = (
                        reservation.worst_case_usd(spec, messages, offered)
                        if _maybe_billed(exc)
                        else None
                    )
                    rec = _record(
                        engine, site, tier, endpoint.base_url, model_name, started, None, exc,
                        run_id, charge,
                    )  # fmt: skip
                    records.append(rec)
                    await ledger.asettle(reservation, rec)
                    reservation = None
                    emit(
                        {
                            "event": StreamEvent.MODEL_ERROR.value,
                            "node": site.node,
                            "tier": tier,
                            "error": rec["error"],
                        }
                    )
                    if not attempts.retry_on(exc):  # type: ignore[operator]
                        raise ModelCallError(tier, model_name, exc) from exc
                    BREAKERS.failure(
                        circuit, threshold=spec.breaker_failures, cooldown_s=spec.breaker_cooldown_s
                    )
                    if attempt < attempts.max_attempts:
                        await asyncio.sleep(_backoff(attempts, attempt, exc))
                    continue
                if not isinstance(msg, AIMessage):
                    raise ModelCallError(tier, model_name, TypeError(f"got {type(msg).__name__}"))
                BREAKERS.success(circuit)
                rec = _record(
                    engine, site, tier, endpoint.base_url, model_name, started, msg, None, run_id
                )
                records.append(rec)
                await ledger.asettle(reservation, rec)
                reservation = None
                if cache_key is not None and engine.cache is not None:
                    await asyncio.to_thread(engine.cache.put, cache_key, msg,
                                            latency_s=rec["latency_s"])  # fmt: skip
                emit(_progress(site, rec, ledger))
                return CallOutcome(msg, records, tier, gate.budget_usd, notes=gate.notes)
        assert last_error is not None
        shown = ", ".join(public_url(e.base_url) for e in engine.endpoints(tier))
        raise ModelCallError(tier, spec.model, last_error, shown) from last_error
    except ModelCallError as exc:
        exc.records = records
        raise
    finally:
        if reservation is not None:
            await ledger.asettle(reservation, None)


async def _cached(
    engine: Engine,
    site: CallSite,
    ledger: Ledger,
    gate: _Gate,
    key: tuple[str, str],
    run_id: str | None,
) -> CallOutcome | None:
    """The outcome of a request the response cache has answered before, or None."""
    assert engine.cache is not None and gate.reservation is not None
    hit = await asyncio.to_thread(engine.cache.get, key)
    if hit is None:
        return None
    msg, latency = hit
    tier = gate.tier
    endpoint = engine.endpoints(tier)[0]
    rec = _record(engine, site, tier, endpoint.base_url, engine.model_name(tier),
                  time.monotonic(), msg, None, run_id)  # fmt: skip
    rec.update(latency_s=latency, cached_response=True)
    await ledger.asettle(gate.reservation, rec)
    emit(_progress(site, rec, ledger))
    return CallOutcome(msg, [rec], tier, gate.budget_usd, notes=gate.notes)


def _progress(site: CallSite, rec: Mapping[str, Any], ledger: Ledger) -> dict[str, Any]:
    return {
        "event": StreamEvent.MODEL_CALL.value,
        "node": site.node,
        "subagent": site.subagent,
        "tier": rec["tier"],
        "model": rec["model"],
        "tokens": rec["input_tokens"] + rec["output_tokens"],
        "cost_usd": rec["cost_usd"],
        "spent_usd": ledger.spent_usd,
        "budget_usd": ledger.budget_usd,
        "latency_s": rec["latency_s"],
    }


def _listened() -> bool:
    """Whether a callback handler (a stream, a tracer) or LangSmith receives this call's trace."""
    callbacks = (var_child_runnable_config.get() or {}).get("callbacks")
    if callbacks and getattr(callbacks, "handlers", callbacks):
        return True
    return bool(tracing_is_enabled())


def _trace_config(
    site: CallSite, tier: str, model: str, endpoint: str, ledger: Ledger, spec: TierSpec
) -> dict[str, Any] | None:
    """Run name, tags and metadata (tier, model, price, budget) of a call's trace.

    None when nobody receives them: merging them into the call's config costs CPU on every
    request.
    """
    if not _listened():
        return None
    remaining = ledger.remaining_usd()
    config: dict[str, Any] = {
        "run_name": f"{site.subagent or site.node} [{tier}]",
        "tags": [f"tier:{tier}", f"node:{site.node}"]
        + ([f"subagent:{site.subagent}"] if site.subagent else []),
        "metadata": {
            "tierflow_tier": tier,
            "tierflow_model": model,
            "tierflow_endpoint": public_url(endpoint),
            "tierflow_node": site.node,
            "tierflow_subagent": site.subagent,
            "tierflow_task_id": site.task_id,
            "tierflow_escalation_reason": site.escalation_reason,
            "tierflow_budget_remaining_usd": remaining,
            **price_metadata(spec),
        },
    }
    return config
