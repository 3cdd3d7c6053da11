"""Escalation: move a failing task one tier up the ladder, then to a human after the top tier.

The task's transcript (tool results included) is kept, so the higher tier continues the work
instead of starting over. Reasons: ``error`` (failed after retries), ``schema_validation``,
``verifier_rejected``, ``loop_detected``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, ValidationError

from tierflow.nodes.human import ask_human, event
from tierflow.protocol import EventKind, InterruptKind, ReviewAction, TaskStatus
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.tiers import escalation_tier, subagent_tier

__all__ = ["escalate_node"]


def escalate_node(
    start_tier: str, output_schema: type[BaseModel], human_fallback: bool, subagent: str
) -> Callable[..., Any]:
    """Node that handles ``state["escalation"]`` for one subagent."""

    async def escalate(state: Mapping[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
        config = engine_for(runtime.context).config
        policy = context_of(runtime).policy
        tier = state.get("tier") or subagent_tier(policy, start_tier, config)
        reason = state["escalation"]["reason"]
        detail = str(state["escalation"].get("detail", ""))[:500]
        upper = escalation_tier(policy, tier, config)
        history = list(state.get("escalations") or [])
        if upper is not None:
            step = {"from": tier, "to": upper, "reason": reason, "detail": detail}
            note = HumanMessage(
                f"(This task moved from tier {tier} to {upper} because: {reason}. "
                "Continue from the work above.)"
            )
            return {
                "tier": upper,
                "repairs": 0,
                "tier_start_step": state.get("steps", 0),
                "loop_warned": False,
                "escalation": None,
                "escalations": [*history, step],
                "transcript": [*(state.get("transcript") or []), note],
                "events": [
                    event(
                        EventKind.ESCALATION,
                        subagent=subagent,
                        task_id=state.get("task_id"),
                        **step,
                    )
                ],
            }
        step = {"from": tier, "to": "human", "reason": reason, "detail": detail}
        if not (human_fallback and policy.human):
            return {
                "escalation": None,
                "escalations": [*history, step],
                "outcome": {"status": TaskStatus.FAILED.value, "error": f"{reason}: {detail}"},
            }

        def valid_edit(d: Any) -> str | None:
            if d.action != ReviewAction.EDIT:
                return None
            try:
                output_schema.model_validate(d.value)
            except ValidationError as exc:
                return f"the edited result does not match {output_schema.__name__}: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
            return None

        decision = ask_human(
            InterruptKind.ESCALATION,
            f"Subagent '{subagent}' could not finish its task on any tier ({reason}). "
            "approve: try the top tier once more; edit: supply the result yourself; reject: "
            "mark the task failed.",
            check=valid_edit,
            subject=(f"{subagent}_result", {}),  # edit: the result to use
            subagent=subagent,
            task_id=state.get("task_id"),
            task=state.get("task"),
            reason=reason,
            detail=detail,
            result_schema=output_schema.model_json_schema(),
        )
        base = {
            "escalation": None,
            "escalations": [*history, {**step, "decision": decision.action}],
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
            return {
                **base,
                "outcome": {"status": TaskStatus.FAILED.value, "error": decision.note or reason},
            }
        output = output_schema.model_validate(decision.value)
        return {
            **base,
            "outcome": {
                "status": TaskStatus.DONE.value,
                "output": output.model_dump(),
                "tier": "human",
            },
        }

    return escalate
