"""The state a subagent task carries: its input, what flows back, and its working fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NotRequired, Required

from langchain_core.messages import BaseMessage
from pydantic import BaseModel
from typing_extensions import TypedDict

from tierflow.nodes._spec import Subagent
from tierflow.state import max_budget, merge_dict, merge_events
from tierflow.usage import merge_usage

__all__ = [
    "TaskRun", "Feedback", "SubagentInput", "SubagentOutput", "SubagentState", "TaskView",
    "Escalation", "EscalationStep", "PendingCall", "Outcome", "task_of",
]  # fmt: skip


class TaskRun(TypedDict):
    """The run a task belongs to, as numbers: its id, budget and spend at dispatch."""

    id: str
    budget_usd: float | None
    spent_usd: float


class Feedback(TypedDict):
    """An answer a verifier sent back to the tier that gave it (a cascade's repair)."""

    answer: str  # the rejected answer, as the tier is shown it again
    reason: str  # why it was rejected
    ask: str  # what the tier is asked next


class SubagentInput(TypedDict, total=False):
    """What a parent sends (via ``Send``) to start one subagent task.

    It carries what the task needs and the budget as numbers, never the run's records: a
    ``Send`` payload is checkpointed with the task, so copying history into it would make
    checkpoints grow with the square of the number of tasks. The run's figures travel
    together in ``run``.
    """

    task_id: str
    task: dict[str, Any]
    env: dict[str, Any]
    context: list[dict[str, Any]]
    run: TaskRun
    # Answers a verifier sent back to this tier, oldest first. Shown after the task, so the
    # tier fixes its answer (a cascade's repair).
    feedback: list[Feedback]


class SubagentOutput(TypedDict, total=False):
    """What flows back into the parent's state.

    ``budget_usd`` is set only when a human raised the budget at a gate inside the task.
    """

    results: Annotated[dict[str, Any], merge_dict]
    usage: Annotated[list[dict[str, Any]], merge_usage]
    budget_usd: Annotated[float | None, max_budget]
    events: Annotated[list[dict[str, Any]], merge_events]


class SubagentState(SubagentInput, SubagentOutput, total=False):
    """The channels of a subagent graph run on its own (``build_subagent``)."""


class Escalation(TypedDict):
    """Why the task must leave its tier: set by a step, handled by the ``escalate`` phase."""

    reason: str  # an EscalationReason value
    detail: str


# One climb of the ladder, as the task's result reports it (``from`` is a keyword, hence the
# functional form): the tiers, why, and a human's decision when the climb ended with one.
EscalationStep = TypedDict(
    "EscalationStep",
    {"from": str, "to": str, "reason": str, "detail": str, "decision": NotRequired[str]},
)


class PendingCall(TypedDict):
    """A tool call a step asked for, run by the ``tools`` phase."""

    name: str
    args: dict[str, Any]
    id: str
    forced: bool  # asked in forced mode: its result goes back as a user message


class Outcome(TypedDict, total=False):
    """How a task ended: set by the phase that ends it, then reported in its result."""

    status: Required[str]  # a TaskStatus value
    output: dict[str, Any]  # when done
    error: str  # when failed or stopped
    tier: str  # who finished it when not the task's tier: "deterministic" or "human"


class TaskView(SubagentInput, SubagentOutput, total=False):
    """A task's state while it runs: its input, what flows back, and its working fields.

    It lives in memory inside the task's node; each phase's result (one model step, one
    round of tool calls, one escalation) is checkpointed as it completes (see
    ``subagent_node``), never the whole view.
    """

    tier: str
    transcript: list[BaseMessage]
    steps: int
    tier_start_step: int
    repairs: int
    pending: list[PendingCall]
    seen_calls: list[str]
    loop_warned: bool
    escalation: Escalation | None
    escalations: list[EscalationStep]
    outcome: Outcome | None


def task_of(spec: Subagent, state: Mapping[str, Any]) -> BaseModel:
    """The task's payload as ``spec.task_schema``."""
    return spec.task_schema.model_validate(state.get("task") or {})
