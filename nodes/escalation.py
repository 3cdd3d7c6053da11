"""Escalation: move a failing task one tier up the ladder, then to a human after the top tier.

The task's transcript (tool results included) is kept, so the higher tier continues the work
instead of starting over. Reasons: ``error`` (failed after retries), ``schema_validation``,
``verifier_rejected``, ``loop_detected``. The next tier is :func:`tierflow.tiers.climb`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, ValidationError

from tierflow.nodes._task_state import EscalationStep, Outcome, TaskView
from tierflow.nodes.human import ask_human, event
from tierflow.protocol import EventKind, InterruptKind, ReviewAction, TaskStatus
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.tiers import Site, SiteKind, climb, start_tier

__all__ = ["escalate_node"]


def escalate_node(
    declared: str, output_schema: type[BaseModel], human_fallback: bool, subagent: str
) -> Callable[..., Any]:
    """Node that handles ``state["escalation"]`` for one subagent (declared tier ``declared``)."""
    site = Site(SiteKind.SUBAGENT, declared)

    async def escalate(state: TaskView, runtime: Runtime[RunContext]) -> dict[str, Any]:
        config = engine_for(runtime.context).config
        policy = context_of(runtime).policy
        tier = state.get("tier") or start_tier(site, policy, config)
        escalation = state["escalation"]
        assert escalation is not None, "the escalate phase runs for a task with an escalation"
        reason = escalation["reason"]
        detail = str(escalation.get("detail", ""))[:500]
        upper = climb(tier, policy, config)
        if upper is not None:
            step: EscalationStep = {"from": tier, "to": upper, "reason": reason, "detail": detail}
            return _climbed(state, step, subagent)
        step = {"from": tier, "to": "human", "reason": reason, "detail": detail}
        if not (human_fallback and policy.human):
            failed = Outcome(status=TaskStatus.FAILED.value, error=f"{reason}: {detail}")
            return {
                "escalation": None,
                "escalations": [*_history(state), step],
                "outcome": failed,
            }
        return _asked(state, step, output_schema, subagent)

    return escalate


def _history(state: TaskView) -> list[EscalationStep]:
    return list(state.get("escalations") or [])


def _climbed(state: TaskView, step: EscalationStep, subagent: str) -> dict[str, Any]:
    """The update that moves the task to ``step["to"]``, its transcript kept."""
    note = HumanMessage(
        f"(This task moved from tier {step['from']} to {step['to']} because: {step['reason']}. "
        "Continue from the work above.)"
    )
    return {
        "tier": step["to"],
        "repairs": 0,
        "tier_start_step": state.get("steps", 0),
        "loop_warned": False,
        "escalation": None,
        "escalations": [*_history(state), step],
        "transcript": [*(state.get("transcript") or []), note],
        "events": [
            event(EventKind.ESCALATION, subagent=subagent, task_id=state.get("task_id"), **step)
        ],
    }


def _edit_check(output_schema: type[BaseModel]) -> Callable[[Any], str | None]:
    """What is wrong with an edited result, or None (approve and reject need no check)."""

    def valid_edit(d: Any) -> str | None:
        if d.action != ReviewAction.EDIT:
            return None
        try:
            output_schema.model_validate(d.value)
        except ValidationError as exc:
            first = exc.errors()[0]
            return (
                f"the edited result does not match {output_schema.__name__}: "
                f"{first['msg']} at {first['loc']}"
            )
        return None

    return valid_edit


def _asked(
    state: TaskView,
    step: EscalationStep,
    output_schema: type[BaseModel],
    subagent: str,
) -> dict[str, Any]:
    """Ask a human about a task no tier could finish; the update their decision makes."""
    reason, detail = step["reason"], step["detail"]
    decision = ask_human(
        InterruptKind.ESCALATION,
        f"Subagent '{subagent}' could not finish its task on any tier ({reason}). "
        "approve: try the top tier once more; edit: supply the result yourself; reject: "
        "mark the task failed.",
        check=_edit_check(output_schema),
        subject=(f"{subagent}_result", {}),  # edit: the result to use
        subagent=subagent,
        task_id=state.get("task_id"),
        task=state.get("task"),
        reason=reason,
        detail=detail,
        result_schema=output_schema.model_json_schema(),
    )
    decided: EscalationStep = {**step, "decision": decision.action}
    base: dict[str, Any] = {
        "escalation": None,
        "escalations": [*_history(state), decided],
        "events": [
            event(
                EventKind.HUMAN_DECISION,
                subagent=subagent,
                task_id=state.get("task_id"),
                decision=decision.action,
                reason=reason,
            )
        ],
    }
    if decision.action == ReviewAction.APPROVE:
        return {
            **base,
            "repairs": 0,
            "loop_warned": False,
            "tier_start_step": state.get("steps", 0),
        }
    if decision.action == ReviewAction.REJECT:
        rejected = Outcome(status=TaskStatus.FAILED.value, error=decision.note or reason)
        return {**base, "outcome": rejected}
    output = output_schema.model_validate(decision.value)
    edited = Outcome(status=TaskStatus.DONE.value, output=output.model_dump(), tier="human")
    return {**base, "outcome": edited}
