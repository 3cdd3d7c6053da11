"""A gated call's requests: each endpoint of its tier in turn, retries with backoff, breakers.

Every attempt, failed or not, becomes a usage record and settles its reservation on the
ledger. A failed attempt is charged at its reservation (``billing="estimated"``) only when the
provider may have processed it (a timeout after sending, a connection lost mid-reply); one
never sent or answered with an error status costs $0, its ``cause`` in the record
(:mod:`tierflow._failures`). An attempt cancelled after it was sent (a sibling failed, the run
was cancelled) may have been processed too: it is charged the same way, and the ledger keeps its
record, since the cancelled node's update is lost; one cancelled before it was sent costs $0.
A retry must fit in the budget left, like the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.types import RetryPolicy

from tierflow._budget_gate import Gate
from tierflow._call import CallOutcome, CallSite, Request, emit
from tierflow._call_trace import trace_config
from tierflow._holds import hold_label
from tierflow._usage_record import maybe_billed, progress, usage_record
from tierflow.breaker import BREAKERS
from tierflow.budget import Ledger, Reservation
from tierflow.config import Endpoint, TierSpec, public_url
from tierflow.errors import CircuitOpenError, ModelCallError
from tierflow.protocol import FailureCause, RunStatus, StreamEvent
from tierflow.runtime import Engine, transient_retry_policy

__all__ = ["MAX_RETRY_AFTER_S", "Call", "attempt_all", "retry_policy"]

# A server's Retry-After is honoured up to this many seconds (a longer wait is the next tier's).
MAX_RETRY_AFTER_S = 60.0


def retry_policy(retry: RetryPolicy | None, spec: TierSpec) -> RetryPolicy:
    """The run's RetryPolicy with a transient-only ``retry_on``, else the tier's ``max_retries``."""
    if retry is None:
        return transient_retry_policy(spec.max_retries)
    return retry._replace(retry_on=transient_retry_policy(0).retry_on)


@dataclass
class Call:
    """One gated call on its way through the endpoints, and what its attempts left behind."""

    engine: Engine
    site: CallSite
    request: Request
    ledger: Ledger
    gate: Gate
    retry: RetryPolicy
    run_id: str | None
    cache_key: tuple[str, str] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    last_error: BaseException | None = None

    @property
    def tier(self) -> str:
        """The tier the gate let the call run on."""
        return self.gate.tier


async def attempt_all(call: Call) -> CallOutcome:
    """Try each endpoint of the call's tier until one answers.

    Raises:
        ModelCallError: the request failed on every endpoint, or failed for a non-transient
            reason; its ``records`` are the attempts' usage records.
    """
    engine, tier = call.engine, call.tier
    spec = engine.config.tier(tier)
    try:
        for endpoint in engine.endpoints(tier):
            if _unreached(call, endpoint):
                continue
            out = await _on_endpoint(call, spec, endpoint)
            if out is not None:
                return out
        assert call.last_error is not None
        shown = ", ".join(dict.fromkeys(public_url(e.base_url) for e in engine.endpoints(tier)))
        raise ModelCallError(tier, spec.model, call.last_error, shown) from call.last_error
    except ModelCallError as exc:
        exc.records = call.records
        raise
    finally:
        if call.gate.reservation is not None:
            await call.ledger.asettle(call.gate.reservation, None)


async def _on_endpoint(call: Call, spec: TierSpec, endpoint: Endpoint) -> CallOutcome | None:
    """The outcome of the attempts on one endpoint, or None: go on to the next endpoint."""
    engine, site, tier, request, gate = call.engine, call.site, call.tier, call.request, call.gate
    model_name = endpoint.model or spec.model
    runnable = engine.bound(tier, endpoint, request.tools, request.tool_choice)
    service_tier = spec.service_tier_at(endpoint)
    # Flex capacity is not standard capacity: a flex tier's 429s open only the flex circuit.
    circuit = (endpoint.base_url, f"{model_name}@{service_tier}" if service_tier else model_name)
    for attempt in range(1, call.retry.max_attempts + 1):
        if not BREAKERS.allow(circuit):
            # Open after consecutive failures (by any call of this process): go on to the next
            # endpoint, then the next tier, without waiting on this one.
            call.last_error = CircuitOpenError(public_url(endpoint.base_url), model_name)
            emit({"event": StreamEvent.ENDPOINT_SKIPPED.value, "node": site.node, "tier": tier,
                  "error": str(call.last_error)})  # fmt: skip
            return None
        if gate.reservation is None:
            # A retry must fit in what is left too; it cannot ask a human now, since an
            # interrupt here would replay the attempts already paid for.
            held = hold_label(site, spec, endpoint.base_url, model_name)
            gate.reservation = await call.ledger.areserve(
                spec, request.messages, request.tools, held
            )
            if gate.reservation is None:
                note = f"budget exhausted before retrying {site.node} on tier {tier}"
                return CallOutcome(None, call.records, tier, gate.budget_usd,
                                   RunStatus.BUDGET_EXHAUSTED.value, [*gate.notes, note])  # fmt: skip
        reservation = gate.reservation
        started = time.monotonic()
        trace = trace_config(site, tier, model_name, endpoint.base_url, call.ledger, spec)
        kwargs = {**engine.request_kwargs(tier, endpoint, reservation.max_tokens),
                  **request.params}  # fmt: skip
        sent = False
        try:
            async with _slot(spec):
                # The timeout starts once the request may run, not while it queues.
                started = time.monotonic()
                async with asyncio.timeout(spec.timeout_s):  # no extra task per call
                    sent = True
                    msg = await runnable.ainvoke(list(request.messages), config=trace, **kwargs)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            if sent:  # else it waited for a slot, unsent: attempt_all releases it at $0
                await _cancelled(call, spec, endpoint, model_name, reservation, started)
            raise
        except Exception as exc:  # noqa: BLE001
            await _failed(call, spec, endpoint, model_name, reservation, started, exc)
            BREAKERS.failure(
                circuit, threshold=spec.breaker_failures, cooldown_s=spec.breaker_cooldown_s
            )
            if attempt < call.retry.max_attempts:
                await asyncio.sleep(_backoff(call.retry, attempt, exc))
            continue
        if not isinstance(msg, AIMessage):
            raise ModelCallError(tier, model_name, TypeError(f"got {type(msg).__name__}"))
        BREAKERS.success(circuit)
        return await _answered(call, endpoint, model_name, reservation, started, msg)
    return None


async def _failed(
    call: Call,
    spec: TierSpec,
    endpoint: Endpoint,
    model_name: str,
    reservation: Reservation,
    started: float,
    exc: Exception,
) -> None:
    """Record and settle a failed attempt; raise when its error is not worth a retry."""
    call.last_error = exc
    request = call.request
    charge = (
        reservation.worst_case_usd(spec, request.messages, request.tools)
        if maybe_billed(exc)
        else None
    )
    rec = usage_record(call.engine, call.site, call.tier, endpoint.base_url, model_name, started,
                       None, exc, call.run_id, charge, spec.service_tier_at(endpoint))  # fmt: skip
    call.records.append(rec)
    await call.ledger.asettle(reservation, rec)
    call.gate.reservation = None
    emit({"event": StreamEvent.MODEL_ERROR.value, "node": call.site.node, "tier": call.tier,
          "error": rec["error"]})  # fmt: skip
    if not call.retry.retry_on(exc):  # type: ignore[operator]
        raise ModelCallError(call.tier, model_name, exc) from exc


async def _cancelled(
    call: Call,
    spec: TierSpec,
    endpoint: Endpoint,
    model_name: str,
    reservation: Reservation,
    started: float,
) -> None:
    """Charge an attempt cancelled after it was sent at its reservation; the ledger keeps it."""
    request = call.request
    charge = reservation.worst_case_usd(spec, request.messages, request.tools)
    why = asyncio.CancelledError("cancelled after the request was sent; charged at its reservation")
    rec = usage_record(call.engine, call.site, call.tier, endpoint.base_url, model_name, started,
                       None, why, call.run_id, charge, spec.service_tier_at(endpoint))  # fmt: skip
    rec["cause"] = FailureCause.CANCELLED_AFTER_SEND.value
    call.gate.reservation = None
    # Shielded: the task is being cancelled, and a second cancel must not lose the charge.
    await asyncio.shield(call.ledger.asettle(reservation, rec, keep=True))


async def _answered(
    call: Call,
    endpoint: Endpoint,
    model_name: str,
    reservation: Reservation,
    started: float,
    msg: AIMessage,
) -> CallOutcome:
    """Record and settle the attempt that answered; keep its answer in the response cache."""
    engine, ledger = call.engine, call.ledger
    service_tier = engine.config.tier(call.tier).service_tier_at(endpoint)
    rec = usage_record(engine, call.site, call.tier, endpoint.base_url, model_name, started,
                       msg, None, call.run_id, None, service_tier)  # fmt: skip
    call.records.append(rec)
    await ledger.asettle(reservation, rec)
    call.gate.reservation = None
    if call.cache_key is not None and engine.cache is not None:
        await asyncio.to_thread(engine.cache.put, call.cache_key, msg, latency_s=rec["latency_s"])
    emit(progress(call.site, rec, ledger))
    return CallOutcome(msg, call.records, call.tier, call.gate.budget_usd, notes=call.gate.notes)


def _unreached(call: Call, endpoint: Endpoint) -> bool:
    """Whether the last attempt never reached this endpoint's server: another try would not.

    A flex tier's standard-tier fallback shares the flex endpoint's URL.
    """
    last = call.records[-1] if call.records else None
    return (last is not None and last["cause"] == FailureCause.NEVER_SENT
            and last["endpoint"] == public_url(endpoint.base_url))  # fmt: skip


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _slot(spec: TierSpec) -> contextlib.AbstractAsyncContextManager[Any]:
    """Limit requests in flight per tier (or per ``concurrency_group``) in this process."""
    if not spec.max_concurrency:
        return contextlib.nullcontext()
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    key = spec.concurrency_group or spec.name
    if key not in slots:
        slots[key] = asyncio.Semaphore(spec.max_concurrency)
    return slots[key]


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
