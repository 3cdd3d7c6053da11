"""Subagent factory: one node that runs a task as a loop of phases bound to a tier.

The phases are step -> tools -> step ... -> finish, each a checkpointed LangGraph task (see
:func:`subagent_node`). Each ``step`` makes exactly one model request. Poor answers and errors climb the
tier ladder in ``escalate`` (see :mod:`tierflow.nodes.escalation`) with the transcript kept, so work
already done (tool results) is not redone.

Its pieces live in private modules, one concern each: the spec (``_spec``), the task's state
(``_task_state``), what the model is shown (``_prompts``), the ``step`` phase (``_step``), the
``tools`` phase (``_tool_runner``) and the loop's machinery (``_phases``).

Example:
    >>> from pydantic import BaseModel
    >>> class Ticket(BaseModel):
    ...     text: str
    >>> class Label(BaseModel):
    ...     category: str
    >>> spec = Subagent(name="classify", description="label a ticket", tier="nano",
    ...                 task_schema=Ticket, output_schema=Label, prompt="Classify the ticket.")
    >>> sorted(build_subagent(spec).compile().get_graph().nodes)
    ['__end__', '__start__', 'classify']
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from langgraph import func
from langgraph.config import get_config
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from tierflow.budget import budget_of, ledger_for, run_id_of, run_spent_usd
from tierflow.nodes._phases import (
    ESCALATE,
    OUTPUT_KEYS,
    STEP,
    TOOLS,
    make_escalate,
    merged,
    next_phase,
    off_loop,
)
from tierflow.nodes._prompts import fit_context as _fit  # noqa: F401 - tests read it from here
from tierflow.nodes._spec import DETERMINISTIC as DETERMINISTIC
from tierflow.nodes._spec import ContextPolicy, Subagent, SubagentResult
from tierflow.nodes._step import make_step, resample
from tierflow.nodes._task_state import (
    SubagentInput,
    SubagentOutput,
    SubagentState,
    TaskRun,
    TaskView,
)
from tierflow.nodes._tool_runner import make_tools_node
from tierflow.protocol import PHASE_EDGES, SUBAGENT_NODE
from tierflow.runtime import RunContext

__all__ = [
    "ContextPolicy", "Subagent", "SubagentResult", "build_subagent", "subagent_node",
    "subagent_input", "off_loop", "PHASE_EDGES", "SUBAGENT_NODE", "resample",
]  # fmt: skip


def subagent_input(
    task_id: str,
    task: BaseModel | Mapping[str, Any],
    state: Mapping[str, Any],
    context: list[dict[str, Any]] | None = None,
    *,
    spent_usd: float | None = None,
) -> SubagentInput:
    """Payload for ``Send(subagent_name, ...)``: the task, its env, the run and its budget.

    Pass ``spent_usd`` (from :func:`tierflow.budget.run_spent_usd`) when sending many tasks
    at once; otherwise it is read from the run's ledger.
    """
    payload = task.model_dump() if isinstance(task, BaseModel) else dict(task)
    if spent_usd is None:
        # A task sent from outside any run (a subagent graph invoked on its own) starts one.
        spent_usd = run_spent_usd(state) if run_id_of(state) else 0.0
    run = TaskRun(
        id=run_id_of(state) or uuid.uuid4().hex, budget_usd=budget_of(state), spent_usd=spent_usd
    )
    payload_in = SubagentInput(task_id=task_id, task=payload, run=run)
    # Empty keys are left out of the payload (it is checkpointed with the task).
    if state.get("env"):
        payload_in["env"] = dict(state["env"])
    if context:
        payload_in["context"] = list(context)
    return payload_in


def subagent_node(spec: Subagent, graph: str | None = None) -> Callable[..., Any]:
    """The node that runs one task of ``spec`` (the target of a ``Send``) to its outcome.

    A task is a loop of phases (``step``: one model request; ``tools``: the calls it asked
    for; ``escalate``: one climb of the ladder), each run as a LangGraph task
    (``langgraph.func.task``): its result is checkpointed as a write the moment it completes.
    After an interrupt (a budget gate, a human at the top of the ladder) or a crash, the node
    runs again and the finished phases replay from those writes, so no model request or tool
    call is made twice; the interrupted phase asks its question again and gets the answer.
    A subgraph per task would do the same with three checkpoints per task plus one per phase
    (twice the checkpointer CPU per model call on SQLite; bench/overhead.py).

    ``graph`` names the graph the node is in: a task with no tier starts where that graph's
    calibration file (``.tierflow/calibration/<graph>.json``, or the run's
    ``RunContext.calibration``) says this subagent starts.
    """
    phases: dict[str, Any] = {
        STEP: func.task(name=STEP)(make_step(spec, graph)),
        TOOLS: func.task(name=TOOLS)(make_tools_node(spec)),
        ESCALATE: func.task(name=ESCALATE)(make_escalate(spec)),
    }

    async def run(state: Mapping[str, Any]) -> dict[str, Any]:
        view: TaskView = dict(state)  # type: ignore[assignment]
        limit = int(get_config().get("recursion_limit") or 100)
        goto = STEP
        for _ in range(limit):
            update = await phases[goto](view)  # the task gets the runtime from LangGraph
            if update.get("usage"):
                # A replayed phase made its requests before this process (or before the
                # interrupt): count them in the run's ledger (by record id, so once).
                await ledger_for(view).aabsorb(update["usage"])
            view = merged(view, update)
            goto = next_phase(view)
            if goto == END:
                return {k: view[k] for k in OUTPUT_KEYS if k in view}  # type: ignore[literal-required]
        raise GraphRecursionError(
            f"subagent {spec.name} (task {view.get('task_id')}) ran {limit} phases without "
            "finishing; raise the run's recursion_limit or lower the subagent's max_steps"
        )

    run.__name__ = spec.name
    return run


def build_subagent(spec: Subagent) -> StateGraph[Any, RunContext, Any, Any]:
    """A graph that runs one task of ``spec`` on its own (input: :func:`subagent_input`).

    Inside a parent graph, add :func:`subagent_node` as the node named ``spec.name`` instead
    (``Send(spec.name, subagent_input(...))``).
    """
    builder = StateGraph(
        SubagentState,
        input_schema=SubagentInput,
        output_schema=SubagentOutput,
        context_schema=RunContext,
    )
    builder.add_node(spec.name, subagent_node(spec), metadata=SUBAGENT_NODE)
    builder.add_edge(START, spec.name)
    builder.add_edge(spec.name, END)
    return builder
