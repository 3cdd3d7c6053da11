"""The one path every model request takes: budget check, retries, fallbacks, usage record.

A node makes at most one :func:`call_model` per execution, so an interrupt (budget, human)
never replays a request that was already paid for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.config import get_config, get_stream_writer
from langgraph.types import RetryPolicy, interrupt

from tierflow.budget import estimate_call_usd, ledger_for
from tierflow.config import TierSpec
from tierflow.errors import ModelCallError
from tierflow.pricing import cost_usd
from tierflow.runtime import Engine, transient_retry_policy
from tierflow.tracing import price_metadata
from tierflow.usage import UsageRecord

__all__ = ["CallSite", "CallOutcome", "call_model", "BUDGET_OPTIONS"]

BUDGET_OPTIONS = ("raise", "cheaper", "stop")


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

    ``message`` is None when the run was stopped at the budget gate (``stopped``).
    ``records`` must be returned in the node's state update under ``usage``.
    """

    message: AIMessage | None
    records: list[UsageRecord]
    tier: str
    budget_usd: float | None
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    def state_update(self) -> dict[str, Any]:
        """The ``usage`` / ``budget_usd`` part of a node's update."""
        update: dict[str, Any] = {"usage": [r.model_dump() for r in self.records]}
        if self.budget_usd is not None:
            update["budget_usd"] = self.budget_usd
        return update


def _thread_id() -> str:
    try:
        return str(get_config().get("configurable", {}).get("thread_id") or "default")
    except RuntimeError:
        return "default"


def _emit(event: dict[str, Any]) -> None:
    # Progress is best effort: never let a stream consumer break a run.
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001
        pass


async def _budget_gate(
    engine: Engine,
    site: CallSite,
    state: Mapping[str, Any],
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
    call_id: str,
) -> tuple[str, float | None, bool, list[str]]:
    """Reserve the call's worst case, or interrupt for a human. Returns (tier, budget, stop, notes)."""
    ledger = ledger_for(_thread_id(), state.get("budget_usd"))
    ledger.absorb(state.get("usage") or [])
    tier, new_budget, problem = site.tier, None, None
    notes: list[str] = []
    while True:
        estimate = estimate_call_usd(engine.config.tier(tier), messages, tools)
        if ledger.try_reserve(call_id, estimate):
            return tier, new_budget, False, notes
        decision = interrupt(
            {
                "kind": "budget",
                "error": problem,
                "task_id": site.task_id,
                "question": (
                    f"The next call ({site.node}, tier {tier}) could cost up to ${estimate:.6f}; "
                    f"${ledger.spent_usd:.6f} of ${ledger.budget_usd:.6f} is spent."
                ),
                "node": site.node,
                "subagent": site.subagent,
                "tier": tier,
                "estimate_usd": estimate,
                "spent_usd": ledger.spent_usd,
                "budget_usd": ledger.budget_usd,
                "cheaper_tier": engine.config.cheaper_tier(tier),
                "options": list(BUDGET_OPTIONS),
                "resume_with": {"action": "raise|cheaper|stop", "budget_usd": "new total (raise)"},
            }
        )
        try:
            action, value = _parse_budget_decision(decision)
        except ValueError as exc:
            # Ask again rather than raise: a raised resume value would be replayed forever.
            problem = str(exc)
            continue
        problem = None
        if action == "stop":
            notes.append("stopped at the budget gate by a human")
            return tier, new_budget, True, notes
        if action == "raise":
            new_budget = value
            ledger.raise_budget(value)
            notes.append(f"budget raised to ${value:.6f}")
        else:
            cheaper = engine.config.cheaper_tier(tier)
            if cheaper is None:
                notes.append(f"no tier is cheaper than {tier}; asking again")
            else:
                notes.append(f"continuing on cheaper tier {cheaper} instead of {tier}")
                tier = cheaper


def _parse_budget_decision(decision: Any) -> tuple[str, float]:
    if isinstance(decision, str):
        decision = {"action": decision}
    if not isinstance(decision, Mapping) or decision.get("action") not in BUDGET_OPTIONS:
        raise ValueError(
            f"budget interrupt resumed with {decision!r}; resume with "
            "{'action': 'raise', 'budget_usd': 1.0}, {'action': 'cheaper'} or {'action': 'stop'}"
        )
    action = str(decision["action"])
    value = float(decision.get("budget_usd") or 0.0)
    if action == "raise" and value <= 0:
        raise ValueError("a budget raise needs a positive 'budget_usd' (the new total)")
    return action, value


def _record(
    engine: Engine,
    site: CallSite,
    tier: str,
    base_url: str,
    model: str,
    started: float,
    msg: AIMessage | None,
    error: BaseException | None,
) -> UsageRecord:
    usage: Any = (msg.usage_metadata if msg is not None else None) or {}
    inp = int(usage.get("input_tokens") or 0)
    out = int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_token_details") or {}).get("cache_read") or 0)
    return UsageRecord(
        id=uuid.uuid4().hex,
        node=site.node,
        subagent=site.subagent,
        task_id=site.task_id,
        tier=tier,
        model=model,
        endpoint=base_url,
        input_tokens=inp,
        cached_tokens=cached,
        output_tokens=out,
        latency_s=round(time.monotonic() - started, 4),
        cost_usd=cost_usd(
            engine.config.tier(tier).price,
            input_tokens=inp,
            cached_tokens=cached,
            output_tokens=out,
        ),
        error=None if error is None else _describe(error, engine.config.tier(tier).timeout_s),
        escalation_reason=site.escalation_reason,
        # Wall-clock start of the request (latency_s is measured on the monotonic clock).
        started_at=round(time.time() - (time.monotonic() - started), 4),
    )


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


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    delay = min(
        policy.max_interval, policy.initial_interval * policy.backoff_factor ** (attempt - 1)
    )
    return delay + (random.uniform(0, 1) if policy.jitter else 0)


async def call_model(
    engine: Engine,
    site: CallSite,
    state: Mapping[str, Any],
    messages: Sequence[BaseMessage],
    *,
    tools: Sequence[Any] = (),
    tool_choice: str | None = None,
    retry: RetryPolicy | None = None,
) -> CallOutcome:
    """Make one model request for ``site`` under the run's budget.

    Transient errors are retried with backoff (LangGraph's RetryPolicy values, transient-only
    ``retry_on``), then the tier's fallback endpoints are tried. Every attempt, failed or not,
    becomes a UsageRecord.

    Raises:
        ModelCallError: the request failed on every endpoint, or failed for a non-transient reason.
    """
    tool_dicts = [convert_to_openai_tool(t) for t in tools]
    call_id = uuid.uuid4().hex
    tier, budget, stopped, notes = await _budget_gate(
        engine, site, state, messages, tool_dicts, call_id
    )
    if stopped:
        return CallOutcome(None, [], tier, budget, stopped=True, notes=notes)
    ledger = ledger_for(_thread_id(), budget if budget is not None else state.get("budget_usd"))
    spec = engine.config.tier(tier)
    policy = retry or transient_retry_policy(spec.max_retries)
    if retry is not None:
        policy = policy._replace(retry_on=transient_retry_policy(0).retry_on)
    records: list[UsageRecord] = []
    last_error: BaseException | None = None
    try:
        for endpoint in engine.endpoints(tier):
            model_name = endpoint.model or spec.model
            client = engine.client(tier, endpoint)
            runnable = (
                client.bind_tools(tool_dicts, tool_choice=tool_choice) if tool_dicts else client
            )
            for attempt in range(1, policy.max_attempts + 1):
                started = time.monotonic()
                try:
                    trace = _trace_config(site, tier, model_name, endpoint.base_url, ledger)
                    trace["metadata"].update(price_metadata(spec))
                    async with _gate(spec):
                        # The timeout starts once the request may run, not while it queues.
                        started = time.monotonic()
                        request = runnable.ainvoke(list(messages), config=trace)  # type: ignore[arg-type]
                        msg = await asyncio.wait_for(request, timeout=spec.timeout_s)
                except Exception as exc:  # noqa: BLE001
                    last_error = exc
                    rec = _record(
                        engine, site, tier, endpoint.base_url, model_name, started, None, exc
                    )
                    records.append(rec)
                    _emit(
                        {
                            "event": "model_error",
                            "node": site.node,
                            "tier": tier,
                            "error": rec.error,
                        }
                    )
                    if not policy.retry_on(exc):  # type: ignore[operator]
                        raise ModelCallError(tier, model_name, exc) from exc
                    if attempt < policy.max_attempts:
                        await asyncio.sleep(_backoff(policy, attempt))
                    continue
                assert isinstance(msg, AIMessage)
                rec = _record(engine, site, tier, endpoint.base_url, model_name, started, msg, None)
                records.append(rec)
                ledger.settle(call_id, rec)
                _emit(_progress(site, rec, ledger.spent_usd))
                return CallOutcome(msg, records, tier, budget, notes=notes)
        assert last_error is not None
        raise ModelCallError(tier, spec.model, last_error) from last_error
    except ModelCallError as exc:
        exc.records = [r.model_dump() for r in records]
        raise
    finally:
        ledger.settle(call_id, None)


def _progress(site: CallSite, rec: UsageRecord, spent: float) -> dict[str, Any]:
    return {
        "event": "model_call",
        "node": site.node,
        "subagent": site.subagent,
        "tier": rec.tier,
        "model": rec.model,
        "tokens": rec.input_tokens + rec.output_tokens,
        "cost_usd": rec.cost_usd,
        "spent_usd": spent,
        "latency_s": rec.latency_s,
    }


def _trace_config(
    site: CallSite, tier: str, model: str, endpoint: str, ledger: Any
) -> dict[str, Any]:
    remaining = ledger.remaining_usd()
    return {
        "run_name": f"{site.subagent or site.node} [{tier}]",
        "tags": [f"tier:{tier}", f"node:{site.node}"]
        + ([f"subagent:{site.subagent}"] if site.subagent else []),
        "metadata": {
            "tierflow_tier": tier,
            "tierflow_model": model,
            "tierflow_endpoint": endpoint,
            "tierflow_node": site.node,
            "tierflow_subagent": site.subagent,
            "tierflow_task_id": site.task_id,
            "tierflow_escalation_reason": site.escalation_reason,
            "tierflow_budget_remaining_usd": remaining,
        },
    }
