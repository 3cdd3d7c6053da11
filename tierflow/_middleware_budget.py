"""BudgetMiddleware's meter: one agent model request reserved, clamped, recorded and settled.

The engine's own steps, in the engine's order (:func:`tierflow.calling.call_model`): the budget
gate reserves the request's worst case on the run's ledger with ``max_tokens`` clamped to what
is left (or asks a human, or follows the declared policy), the request runs with that cap, its
usage record settles the reservation. An interrupt is only raised before anything was paid in
this model-node run: once a climb has paid for a cheaper tier's reply, a budget question is
deferred to the next model-node run (:class:`Deferred`), so resuming never replays a paid request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain.agents.structured_output import StructuredOutputError
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.errors import GraphBubbleUp

from tierflow._budget_gate import Gate, budget_gate
from tierflow._call import CallSite, emit
from tierflow._middleware_tab import MODEL_NODE, Attempt, Tab, reply_of, traced
from tierflow._usage_record import maybe_billed, progress, usage_record
from tierflow.budget import Ledger, Reservation, ledger_for, run_id_of
from tierflow.calling import tool_dicts
from tierflow.protocol import BudgetAction, EventKind, RunStatus
from tierflow.runtime import Engine
from tierflow.state import event
from tierflow.tiers import TierPolicy

__all__ = ["Deferred", "Meter", "record_of", "request_messages", "request_tools"]

Handler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]


class Deferred(Exception):  # noqa: N818 - a signal between the two middlewares, not an error
    """The next request needs a human, but this model-node run already paid for one."""

    def __init__(self, tier: str) -> None:
        super().__init__(tier)
        self.tier = tier


def request_messages(request: ModelRequest[Any]) -> list[BaseMessage]:
    """What the request sends: the system message, then the conversation."""
    system = [request.system_message] if request.system_message is not None else []
    return [*system, *request.messages]


def request_tools(request: ModelRequest[Any]) -> list[dict[str, Any]]:
    """The tool schemas the request sends (a response format's schema counts as one)."""
    tools = [t for t in request.tools if not isinstance(t, dict) or t.get("type") == "function"]
    offered = tool_dicts(tools)
    schema = getattr(request.response_format, "schema", None)
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        fn = {"name": schema.__name__, "parameters": schema.model_json_schema()}
        offered = [*offered, {"type": "function", "function": fn}]
    return offered


def record_of(
    engine: Engine,
    attempt: Attempt,
    started: float,
    response: ModelResponse[Any] | None,
    error: BaseException | None,
    run_id: str | None,
    worst_case_usd: float = 0.0,
) -> dict[str, Any]:
    """The usage record of one attempt, as the engine writes it (:mod:`tierflow._usage_record`).

    A reply that create_agent's structured output then refused was answered and billed, so it
    is recorded from its tokens; a failure the provider may have processed is charged at
    ``worst_case_usd`` (``billing="estimated"``), any other at $0 with its cause.
    """
    msg = reply_of(response) if response is not None else None
    if isinstance(error, StructuredOutputError):
        msg, error = error.ai_message, None
    charge = worst_case_usd if error is not None and maybe_billed(error) else None
    return usage_record(engine, attempt.site, attempt.site.tier, attempt.endpoint,
                        attempt.model_name, started, msg, error, run_id, charge)  # fmt: skip


def _cap(attempt: Attempt, request: ModelRequest[Any], reservation: Reservation) -> int:
    """The output cap sent: the reserved one, or a smaller one the agent already asked for."""
    asked = [request.model_settings.get("max_tokens"),
             request.model_settings.get("max_completion_tokens"),
             getattr(attempt.model, "max_tokens", None)]  # fmt: skip
    return min([reservation.max_tokens, *(n for n in asked if isinstance(n, int) and n > 0)])


@dataclass(frozen=True)
class Meter:
    """How a BudgetMiddleware meters requests: prices, the unattended policy, its own tier."""

    engine: Engine
    policy: TierPolicy
    tier: str  # the tier an agent's own model is priced as (without a TierMiddleware)

    def attempt_for(self, request: ModelRequest[Any], tier: str) -> Attempt:
        """The agent's own model as an attempt on ``tier`` (no TierMiddleware before this one)."""
        model = request.model
        name = str(getattr(model, "model_name", None) or getattr(model, "model", None)
                   or type(model).__name__)  # fmt: skip
        url = str(getattr(model, "openai_api_base", None) or self.engine.config.tier(tier).base_url)
        site = CallSite(node=MODEL_NODE, tier=tier)
        return Attempt(site, model, name, url, lambda n: {"max_tokens": n})

    async def run(self, tab: Tab, request: ModelRequest[Any], handler: Handler) -> ModelResponse:
        """Make ``request`` under the run's budget (see the module docstring).

        Raises:
            Deferred: the request needs a human but this model-node run already paid.
        """
        attempt = tab.attempt or self.attempt_for(request, self.tier)
        engine = tab.engine or self.engine
        ledger = ledger_for(request.state)
        messages, tools = request_messages(request), request_tools(request)
        asks = self.policy.budget_action() is None
        # A human may only be asked before this model-node run paid for anything.
        policy = (
            TierPolicy(on_budget=BudgetAction.STOP.value) if asks and tab.records else self.policy
        )
        gate = await budget_gate(engine, attempt.site, ledger, policy, messages, tools)
        if (gate.stopped or gate.reservation is None) and policy is not self.policy:
            raise Deferred(attempt.site.tier)  # asked in the next model-node run instead
        if gate.budget_usd is not None:
            tab.writes["budget_usd"] = gate.budget_usd
        if gate.notes:
            tab.events.append(event(EventKind.BUDGET, node=MODEL_NODE, notes=gate.notes))
        if gate.stopped or gate.reservation is None:
            return self._stopped(tab, gate)
        if gate.tier != attempt.site.tier and tab.model_for is not None:
            lower = tab.model_for(gate.tier)
            site = dataclasses.replace(lower.site, escalation_reason=attempt.site.escalation_reason)
            attempt = dataclasses.replace(lower, site=site)
        elif gate.tier != attempt.site.tier:
            attempt = self.attempt_for(request, gate.tier)
            attempt.model = engine.client(gate.tier, engine.endpoints(gate.tier)[0])
        if tab.attempt is not None:
            tab.attempt.metered = True
        return await self._send(tab, attempt, request, handler, ledger, gate.reservation)

    async def _send(
        self,
        tab: Tab,
        attempt: Attempt,
        request: ModelRequest[Any],
        handler: Handler,
        ledger: Ledger,
        reservation: Reservation,
    ) -> ModelResponse:
        engine = tab.engine or self.engine
        spec = engine.config.tier(attempt.site.tier)
        settings = {**request.model_settings, **attempt.kwargs(_cap(attempt, request, reservation))}
        sent = request.override(model=attempt.model, model_settings=settings)
        run_id = run_id_of(request.state)
        started = time.monotonic()
        try:
            with traced(attempt, spec, ledger):
                async with asyncio.timeout(spec.timeout_s):
                    response = await handler(sent)
        except GraphBubbleUp:
            await ledger.asettle(reservation, None)
            raise
        except Exception as exc:
            worst = reservation.worst_case_usd(
                spec, request_messages(request), request_tools(request)
            )
            rec = record_of(engine, attempt, started, None, exc, run_id, worst)
            tab.records.append(rec)
            await ledger.asettle(reservation, rec)
            raise
        rec = record_of(engine, attempt, started, response, None, run_id)
        tab.records.append(rec)
        await ledger.asettle(reservation, rec)
        emit(progress(attempt.site, rec, ledger))
        return response

    def _stopped(self, tab: Tab, gate: Gate) -> ModelResponse:
        """End the run where the budget stops it: a final message saying why."""
        status = gate.stopped or RunStatus.BUDGET_EXHAUSTED.value
        tab.stopped = status
        tab.writes["status"] = status
        why = "; ".join(gate.notes) or "budget exhausted"
        note = AIMessage(f"Stopped before the next model call: {why}.",
                         response_metadata={"tierflow_status": status})  # fmt: skip
        return ModelResponse(result=[note])
