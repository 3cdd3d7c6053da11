"""TierMiddleware's climb: run a model request on a tier, check the reply, go one tier up.

Each tier's endpoints are tried in turn with the engine's retries (transient errors only,
:func:`tierflow.runtime.transient_retry_policy`) and circuit breakers; a request that fails on
all of them, or for a reason not worth a retry, climbs with reason ``error``. A reply the
checks refuse (:mod:`tierflow._middleware_checks`) is sent back to the same tier ``repairs``
times with the reason, then climbs. Every attempt is a usage record: metered by an inner
BudgetMiddleware, or recorded here when the agent has none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain.agents.structured_output import StructuredOutputError
from langchain_core.language_models import BaseChatModel
from langgraph.errors import GraphBubbleUp
from langgraph.types import RetryPolicy

from tierflow._attempts import _backoff, retry_policy
from tierflow._call import CallSite
from tierflow._middleware_budget import Deferred, record_of, request_messages, request_tools
from tierflow._middleware_checks import Problem, ReplyChecks, repair_note
from tierflow._middleware_tab import MODEL_NODE, Attempt, Tab, reply_of, traced
from tierflow.breaker import BREAKERS
from tierflow.budget import plan_call, run_id_of
from tierflow.config import Endpoint, public_url
from tierflow.errors import CircuitOpenError, ModelCallError
from tierflow.protocol import EscalationReason, EventKind, RunStatus
from tierflow.runtime import Engine
from tierflow.state import event
from tierflow.tiers import TierPolicy, climb

__all__ = ["Ladder", "climb_ladder"]

Handler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
_CLIMBS = TierPolicy()  # climb() moves one step up when the policy escalates (this one does)


@dataclass(frozen=True)
class Ladder:
    """A TierMiddleware's resolved settings: the engine (profile, ladder, models) and checks."""

    engine: Engine
    models: Mapping[str, BaseChatModel]
    start: str
    checks: ReplyChecks
    retry: RetryPolicy | None
    repairs: int
    sticky: bool

    def attempt(
        self, tier: str, endpoint: Endpoint | None = None, reason: str | None = None
    ) -> Attempt:
        """A request on ``tier`` at ``endpoint`` (default: its first)."""
        engine = self.engine
        endpoint = endpoint or engine.endpoints(tier)[0]
        model = engine.client(tier, endpoint)
        name = (
            engine.model_name(tier)
            if tier in self.models
            else (endpoint.model or engine.model_name(tier))
        )
        url = str(getattr(model, "openai_api_base", None) or endpoint.base_url)
        site = CallSite(node=MODEL_NODE, tier=tier, escalation_reason=reason)
        kwargs: Callable[[int], dict[str, Any]] = lambda n: engine.request_kwargs(tier, endpoint, n)  # noqa: E731
        return Attempt(site, model, name, url, kwargs)


async def climb_ladder(
    ladder: Ladder, tab: Tab, request: ModelRequest[Any], handler: Handler
) -> ModelResponse[Any]:
    """The reply of the first tier whose reply passes the checks (the top tier's if none).

    Raises:
        ModelCallError: the top tier failed too (its records are in ``records``).
        StructuredOutputError: the top tier's reply did not fit the agent's response format.
        Deferred: a budget question must wait for the next model-node run.
    """
    state: Mapping[str, Any] = request.state
    config = ladder.engine.config
    tier = str(state.get("tier") or "")
    tier = tier if tier in config.ladder else ladder.start
    last: Mapping[str, Any] = state.get("escalation") or {}
    reason = last.get("reason") if last.get("to") == tier else None
    if last.get("deferred"):
        tab.writes["escalation"] = {k: v for k, v in last.items() if k != "deferred"}
    while True:
        try:
            response, problem, error = await _on_tier(ladder, tab, request, handler, tier, reason)
        except Deferred:
            tab.writes["tier"] = tier
            raise
        if tab.stopped or problem is None:
            if ladder.sticky and not tab.stopped:
                tab.writes["tier"] = tier
            if state.get("status") == RunStatus.UNVERIFIED and not tab.stopped:
                tab.writes["status"] = None
            assert response is not None
            return response
        upper = climb(tier, _CLIMBS, config)
        step = {"from": tier, "to": upper, "reason": problem.reason.value,
                "detail": problem.detail[:500]}  # fmt: skip
        tab.events.append(event(EventKind.ESCALATION, node=MODEL_NODE, **step))
        if upper is None:
            if error is not None:
                raise error
            assert response is not None
            tab.writes["status"] = RunStatus.UNVERIFIED.value  # kept, though it failed its checks
            return response
        tab.writes["escalation"] = step
        tier, reason = upper, problem.reason.value


async def _on_tier(
    ladder: Ladder,
    tab: Tab,
    request: ModelRequest[Any],
    handler: Handler,
    tier: str,
    reason: str | None,
) -> tuple[ModelResponse[Any] | None, Problem | None, Exception | None]:
    """One tier's reply (repaired up to ``repairs`` times): (reply, its problem, the error)."""
    sent = request
    for repair in range(ladder.repairs + 1):
        try:
            response = await _call(ladder, tab, sent, handler, tier, reason)
        except StructuredOutputError as exc:
            return None, Problem(EscalationReason.SCHEMA_VALIDATION, str(exc)), exc
        except ModelCallError as exc:
            return None, Problem(EscalationReason.ERROR, str(exc)), exc
        if tab.stopped:
            return response, None, None
        problem, notes = await ladder.checks.problem(request, response, tier)
        tab.events.extend(notes)
        if problem is None or repair == ladder.repairs:
            return response, problem, None
        note = repair_note(reply_of(response), problem)
        sent = request.override(messages=[*request.messages, *note])  # type: ignore[list-item]
    raise AssertionError("unreachable: the last repair returns")


async def _call(
    ladder: Ladder,
    tab: Tab,
    request: ModelRequest[Any],
    handler: Handler,
    tier: str,
    reason: str | None,
) -> ModelResponse[Any]:
    """The tier's reply: each endpoint in turn, transient errors retried with backoff.

    Raises:
        ModelCallError: every endpoint failed, or one failed for a reason not worth a retry.
    """
    engine = ladder.engine
    spec = engine.config.tier(tier)
    retry = retry_policy(ladder.retry, spec)
    last: Exception | None = None
    for endpoint in engine.endpoints(tier):
        attempt = ladder.attempt(tier, endpoint, reason)
        circuit = (endpoint.base_url, attempt.model_name)
        for n in range(1, retry.max_attempts + 1):
            if not BREAKERS.allow(circuit):
                last = CircuitOpenError(public_url(endpoint.base_url), attempt.model_name)
                break  # the next endpoint, then the next tier, without waiting on this one
            try:
                response = await _once(ladder, tab, dataclasses.replace(attempt), request, handler)
            except (GraphBubbleUp, Deferred, StructuredOutputError):
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, as the engine does
                last = exc
                BREAKERS.failure(circuit, threshold=spec.breaker_failures,
                                 cooldown_s=spec.breaker_cooldown_s)  # fmt: skip
                if not retry.retry_on(exc):  # type: ignore[operator]
                    raise ModelCallError(tier, attempt.model_name, exc) from exc
                if n < retry.max_attempts:
                    await asyncio.sleep(_backoff(retry, n, exc))
                continue
            BREAKERS.success(circuit)
            return response
    assert last is not None
    shown = ", ".join(public_url(e.base_url) for e in engine.endpoints(tier))
    raise ModelCallError(tier, spec.model, last, shown) from last


async def _once(
    ladder: Ladder, tab: Tab, attempt: Attempt, request: ModelRequest[Any], handler: Handler
) -> ModelResponse[Any]:
    """One attempt; recorded here unless an inner BudgetMiddleware metered it."""
    engine = ladder.engine
    spec = engine.config.tier(attempt.site.tier)
    tab.attempt = attempt
    started = time.monotonic()
    try:
        with traced(attempt, spec):
            async with asyncio.timeout(spec.timeout_s):
                response = await handler(request.override(model=attempt.model))
    except (GraphBubbleUp, Deferred):
        raise
    except Exception as exc:
        if not attempt.metered:
            plan = plan_call(spec, request_messages(request), request_tools(request), None)
            worst = plan[0] if plan else 0.0
            tab.records.append(record_of(engine, attempt, started, None, exc,
                                         run_id_of(request.state), worst))  # fmt: skip
        raise
    finally:
        tab.attempt = None
    if not attempt.metered:
        tab.records.append(record_of(engine, attempt, started, response, None,
                                     run_id_of(request.state)))  # fmt: skip
    return response
