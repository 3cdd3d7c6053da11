"""The supervisor's one forced tool call per turn, and the digest of results both turns read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from tierflow.calling import CallSite, call_model
from tierflow.errors import ModelCallError
from tierflow.nodes._supervisor_state import SupervisorState
from tierflow.nodes.human import event
from tierflow.protocol import EventKind, RunStatus
from tierflow.runtime import RunContext, context_of, engine_for

__all__ = ["planner_call", "results_digest"]


def results_digest(results: Mapping[str, Any], limit: int = 6000) -> str:
    """The tasks' results as compact JSON for a prompt, cut at ``limit`` characters."""
    rows = [
        {
            "task_id": k,
            "subagent": r["subagent"],
            "status": r["status"],
            "tier": r["tier"],
            "task": r["task"],
            "output": r.get("output"),
            "error": r.get("error"),
        }
        for k, r in results.items()
    ]
    text = json.dumps(rows, default=str)  # compact: the C encoder, fewer tokens
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


async def planner_call(
    runtime: Runtime[RunContext],
    node: str,
    tier: str,
    state: SupervisorState,
    messages: list[Any],
    tool: Any,
    tool_choice: str,
    escalation_reason: str | None = None,
) -> Any:
    """One forced tool call for the supervisor or answer node.

    Returns the CallOutcome, or the final state update when the call failed or was stopped.
    ``escalation_reason`` is recorded on the call when it climbed from a rejected draft.
    """
    engine = engine_for(runtime.context)
    ctx = context_of(runtime)
    try:
        out = await call_model(
            engine,
            CallSite(node=node, tier=tier, escalation_reason=escalation_reason),
            state,
            messages,
            tools=[tool],
            tool_choice=tool_choice,
            retry=ctx.retry,
            policy=ctx.policy,
        )
    except ModelCallError as exc:
        return {
            "usage": exc.records,
            "status": RunStatus.FAILED.value,
            "events": [event(EventKind.ERROR, node=node, error=str(exc))],
        }
    if out.stopped or out.message is None:
        status = RunStatus(out.stopped or RunStatus.STOPPED).value
        notes = [event(EventKind.BUDGET, node=node, notes=out.notes)] if out.notes else []
        return {**out.state_update(), "status": status, "events": notes}
    return out
