"""Supervisor on the flagship tier: plans, delegates typed tasks (fanned out with Send), answers.

Graph shape::

    START -> supervisor --(Send x N)--> <subagent nodes> -> supervisor -> ... -> answer -> END

The supervisor makes one structured decision per turn. It is bounded by ``max_turns`` and by
loop detection: a delegation identical to one already made is not dispatched again, and a
turn with nothing new goes straight to the answer. The decision turn lives in
``_supervisor_decide``, the final answer and its review in ``_supervisor_answer``, the state's
schemas in ``_supervisor_state``; this module declares the spec and wires the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from tierflow.errors import SpecError
from tierflow.nodes._part_drafts import PartDrafts

# ANSWER, DECIDE and RunStatusName are importable from here as before (redundant aliases).
from tierflow.nodes._supervisor_answer import ANSWER as ANSWER
from tierflow.nodes._supervisor_answer import make_answer, make_review
from tierflow.nodes._supervisor_decide import DECIDE as DECIDE
from tierflow.nodes._supervisor_decide import decision_schema, make_supervisor
from tierflow.nodes._supervisor_state import RunStatusName as RunStatusName
from tierflow.nodes._supervisor_state import SupervisorInput, SupervisorOutput, SupervisorState
from tierflow.nodes.subagent import SUBAGENT_NODE, Subagent, subagent_node
from tierflow.nodes.verifier import Verdict
from tierflow.protocol import Node
from tierflow.runtime import RunContext

__all__ = [
    "PartDrafts",
    "Supervisor",
    "SupervisorState",
    "SupervisorOutput",
    "SupervisorInput",
    "build_supervisor_graph",
    "decision_schema",
]


@dataclass(frozen=True)
class Supervisor:
    """Declaration of a supervisor graph.

    Attributes:
        subagents: the workers it can delegate to.
        prompt: planning instructions.
        answer_schema: typed final answer written by the flagship.
        answer_prompt: instructions for the final answer.
        tier: tier of the supervisor and the answer (default: the ladder's top).
        max_turns: planning turns before it must answer.
        max_tasks_per_turn: delegations per turn (fan-out width).
        answer_verifier: ``(answer, state) -> reason | None`` (or a
            :class:`~tierflow.nodes.verifier.Verdict`); a rejection asks for one repair. Run
            as a :class:`~tierflow.nodes.verifier.Check` of (request, answer, state); each
            verdict is a ``verified`` event.
        fallback_plan: tasks to run when the supervisor's decision is unusable twice.
        answer_normalize: deterministic clean-up of the answer before ``answer_verifier``.
        review: when a human reviews the answer in attended runs: ``unverified`` (the
            default: only an answer whose checks failed), ``always`` (an approval step before
            every answer is final) or ``never``. Skipped when the run produced no answer and
            in unattended runs; a rejected answer ends the run ``rejected``.
        answer_evidence: ``state -> text`` shown to the answer beside the results, e.g. the
            lines of the source that define what the question names (found without a model).
        answer_tier: a cheaper tier that writes the answer first (a draft); when
            ``answer_verifier`` rejects it, the repairs are written on the supervisor's own tier
            (when the policy escalates), one more than a plain answer gets. A rejection no
            repair can address (``Verdict.repairable`` False) still climbs there once, and that
            answer stands, unverified. Worth it only when
            the verifier can tell a poor answer (the draft's check is the escalation trigger).
            A policy's ``planner_tier`` overrides it (all-flagship drafts on the flagship).
        enough: ``state -> bool``, a deterministic test that the results so far answer the
            request (e.g. every part of a question has facts from an index): after a round of
            delegations that passes it, the run goes to the answer without another planning
            call (a ``shortcut`` event says so). None: the supervisor decides when it is done.
        first_round: ``state -> [(subagent, task), ...]``, delegations the graph can plan
            without a model (e.g. a search for each name the question asks about, when an
            index already holds a fact for every part): they run before the first planning
            call, and with ``enough`` a request they answer needs no planning call at all. An
            empty list (or None) leaves the first round to the supervisor.
        part_drafts: with ``answer_tier``, the draft is written part by part in plain text
            (:class:`~tierflow.nodes._part_drafts.PartDrafts`: one short call per part of the
            request, composed into ``answer_schema``). A rejected one is drafted part by part
            again on the supervisor's tier (when it was below it); the repairs after that are
            whole answers on the supervisor's tier, two of them.
        name: the graph's name, for its calibration file: each subagent's task starts on the
            tier ``.tierflow/calibration/<name>.json`` chose for it (``tierflow calibrate
            <name>``), when the file exists; ``RunContext.calibration`` names another file.
    """

    subagents: Sequence[Subagent]
    prompt: str
    answer_schema: type[BaseModel]
    answer_prompt: str
    tier: str | None = None
    max_turns: int = 3
    max_tasks_per_turn: int = 4
    answer_verifier: Callable[[BaseModel, Mapping[str, Any]], str | Verdict | None] | None = None
    fallback_plan: Callable[[Mapping[str, Any]], list[tuple[str, BaseModel]]] | None = None
    answer_normalize: Callable[[BaseModel, Mapping[str, Any]], BaseModel] | None = None
    answer_evidence: Callable[[Mapping[str, Any]], str] | None = None
    review: Literal["unverified", "always", "never"] = "unverified"
    answer_tier: str | None = None
    enough: Callable[[Mapping[str, Any]], bool] | None = None
    first_round: Callable[[Mapping[str, Any]], list[tuple[str, BaseModel]]] | None = None
    part_drafts: PartDrafts | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.answer_tier is not None and self.answer_verifier is None:
            raise SpecError(
                f"Supervisor answer_tier={self.answer_tier!r} needs an answer_verifier: a draft "
                "is escalated only when its check rejects it; pass answer_verifier=... or drop "
                "answer_tier"
            )
        if self.part_drafts is not None and self.answer_tier is None:
            raise SpecError(
                "Supervisor part_drafts needs an answer_tier: the parts are drafted on that "
                "tier; pass answer_tier='nano' (or another cheap tier) or drop part_drafts"
            )


def build_supervisor_graph(
    spec: Supervisor, state_schema: type[Any] = SupervisorState
) -> StateGraph[Any, RunContext, Any, Any]:
    """Uncompiled supervisor graph with one node per subagent; compile with a checkpointer.

    Example:
        >>> from tierflow.graphs.codebase_qa import SUPERVISOR
        >>> g = build_supervisor_graph(SUPERVISOR).compile()
        >>> sorted(n for n in g.get_graph().nodes if not n.startswith("__"))
        ['answer', 'extract', 'review', 'search', 'supervisor']
    """
    schema = decision_schema(spec.subagents, spec.max_tasks_per_turn)
    builder = StateGraph(
        state_schema,
        input_schema=SupervisorInput,
        output_schema=SupervisorOutput,
        context_schema=RunContext,
    )
    # Node names go to LangGraph (and into checkpoints) as plain strings, never enum members.
    supervisor, answer = Node.SUPERVISOR.value, Node.ANSWER.value
    names = [s.name for s in spec.subagents]
    # supervisor, answer and review route themselves (Command); destinations draw the edges.
    builder.add_node(
        supervisor, make_supervisor(spec, schema), destinations=(*names, supervisor, answer, END)
    )
    builder.add_node(answer, make_answer(spec), destinations=(answer, Node.REVIEW.value, END))
    builder.add_node(Node.REVIEW.value, make_review(spec), destinations=(END,))
    for sub in spec.subagents:
        builder.add_node(sub.name, subagent_node(sub, spec.name), metadata=SUBAGENT_NODE)
        builder.add_edge(sub.name, supervisor)
    builder.add_edge(START, supervisor)
    return builder
