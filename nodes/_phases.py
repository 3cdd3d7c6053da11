"""The phases of a subagent task: their names, which runs next, and how an update lands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_type_hints

from langgraph.graph import END
from langgraph.runtime import Runtime

from tierflow.nodes._spec import Subagent, SubagentResult
from tierflow.nodes._task_state import Outcome, SubagentOutput, TaskView
from tierflow.nodes.escalation import escalate_node
from tierflow.nodes.human import event
from tierflow.protocol import EventKind, Node
from tierflow.runtime import RunContext

__all__ = [
    "STEP", "TOOLS", "ESCALATE", "OUTPUT_KEYS", "next_phase", "merged", "finished",
    "make_escalate", "off_loop",
]  # fmt: skip

T = TypeVar("T")

# Phase names go to LangGraph (task names in checkpoints and traces) as plain strings.
STEP, TOOLS, ESCALATE = Node.STEP.value, Node.TOOLS.value, Node.ESCALATE.value
# The reducers SubagentOutput declares (Annotated[..., reducer]): the loop merges each
# phase's update into the task's view the way the parent's channels will.
_REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    k: hint.__metadata__[0]
    for k, hint in get_type_hints(SubagentOutput, include_extras=True).items()
}
OUTPUT_KEYS = tuple(_REDUCERS)


async def off_loop(hooked: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when ``hooked``, else inline.

    Graph hooks (shortcut, prefetch, normalize, verifier, tool building) do file work, which
    must stay off the event loop: ``langgraph dev`` fails runs that block it.
    """
    return await asyncio.to_thread(fn, *args) if hooked else fn(*args)


def next_phase(view: TaskView) -> str:
    """The phase a task runs next, or END once it has an outcome."""
    if view.get("outcome"):
        return END
    if view.get("escalation"):
        return ESCALATE
    if view.get("pending"):
        return TOOLS
    return STEP


def merged(view: Mapping[str, Any], update: Mapping[str, Any]) -> TaskView:
    """``view`` with one phase's update applied (output channels through their reducers)."""
    out: dict[str, Any] = dict(view)
    for key, value in update.items():
        reducer = _REDUCERS.get(key)
        out[key] = reducer(out.get(key), value) if reducer else value
    return out  # type: ignore[return-value]


def finished(spec: Subagent, state: Mapping[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` plus the task's result when it ends the task (an ``outcome`` is set).

    The node that decides the outcome hands the result back itself, so a task that finishes
    in one step costs one super-step (and one checkpoint), not two.
    """
    outcome: Outcome | None = update.get("outcome")
    if not outcome:
        return update
    view = {**state, **update}
    # The working transcript is not needed any more: its last checkpointed copy stays.
    update = {k: v for k, v in update.items() if k != "transcript"}
    result = SubagentResult(
        task_id=view["task_id"],
        subagent=spec.name,
        task=view.get("task") or {},
        status=outcome["status"],
        output=outcome.get("output"),
        tier=outcome.get("tier") or view.get("tier") or spec.tier,
        steps=view.get("steps", 0),
        escalations=list(view.get("escalations") or []),
        error=outcome.get("error"),
    )
    done = event(
        EventKind.TASK_FINISHED,
        subagent=spec.name,
        task_id=view["task_id"],
        status=result.status,
        tier=result.tier,
    )
    return {
        **update,
        "results": {view["task_id"]: result.model_dump()},
        "events": [*(update.get("events") or []), done],
    }


def make_escalate(spec: Subagent) -> Callable[..., Any]:
    """The ``escalate`` phase of ``spec``: one climb of the ladder (or a human's decision)."""
    climb = escalate_node(spec.tier, spec.output_schema, spec.human_fallback, spec.name)

    async def escalate(state: TaskView, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return finished(spec, state, await climb(state, runtime))

    return escalate
