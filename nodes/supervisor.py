"""Supervisor on the flagship tier: plans, delegates typed tasks (fanned out with Send), answers.

Graph shape::

    START -> supervisor --(Send x N)--> <subagent nodes> -> supervisor -> ... -> answer -> END

The supervisor makes one structured decision per turn. It is bounded by ``max_turns`` and by
loop detection: a delegation identical to one already made is not dispatched again, and a
turn with nothing new goes straight to the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel, Field, ValidationError, create_model
from typing_extensions import TypedDict

from tierflow.budget import begin_run, end_run, ledger_for, run_spent_usd
from tierflow.calling import CallSite, call_model
from tierflow.errors import InputError, ModelCallError
from tierflow.nodes.human import ReviewDecision, ask_human, event
from tierflow.nodes.subagent import (
    SUBAGENT_NODE,
    ContextPolicy,
    Subagent,
    off_loop,
    subagent_input,
    subagent_node,
)
from tierflow.nodes.verifier import CheckSite, Verdict, as_check, verdict_event
from tierflow.protocol import (
    EventKind,
    InterruptKind,
    Node,
    ReviewAction,
    RunStatus,
    TaskStatus,
    ToolName,
)
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.state import EngineState, cleared, max_budget, merge_dict
from tierflow.tiers import Site, SiteKind, start_tier

__all__ = [
    "Supervisor",
    "SupervisorState",
    "SupervisorOutput",
    "SupervisorInput",
    "build_supervisor_graph",
    "decision_schema",
]

DECIDE = ToolName.DECIDE.value
ANSWER = ToolName.ANSWER.value


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


class SupervisorInput(TypedDict, total=False):
    """What a user passes to start a run."""

    request: str
    env: dict[str, Any]
    budget_usd: Annotated[float | None, max_budget]


# unverified: an answer exists but still failed answer_verifier after its repair;
# budget_exhausted: an unattended budget stop; the answer (if any) uses the finished work
RunStatusName = Literal[
    "running", "answered", "unverified", "stopped", "budget_exhausted", "failed"
]


class SupervisorOutput(EngineState, total=False):
    """What a supervisor run returns: the answer, its status, the plans and each task's result."""

    answer: dict[str, Any] | None
    status: RunStatusName
    answer_problems: list[str]
    plans: list[str]
    results: Annotated[dict[str, Any], merge_dict]


class SupervisorState(SupervisorOutput, SupervisorInput, total=False):
    """State of a supervisor run (checkpointed): the output plus the loop's counters."""

    turn: int
    delegated: list[str]
    dispatch: list[dict[str, Any]]
    repairs: int
    answer_retry: bool  # the answer failed its check once and is asked again
    answer_review: bool  # unverified in an attended run: a human decides what follows


def decision_schema(subagents: Sequence[Subagent], max_tasks: int) -> type[BaseModel]:
    """The structured decision: a plan, typed delegations (one variant per subagent), done."""
    variants = [
        create_model(
            f"delegate_{s.name}",
            __doc__=s.description,
            subagent=(Literal[s.name], ...),  # type: ignore[valid-type, arg-type]
            task=(s.task_schema, ...),
        )
        for s in subagents
    ]
    item: Any = variants[0] if len(variants) == 1 else Union[tuple(variants)]  # noqa: UP007
    if len(variants) > 1:
        item = Annotated[item, Field(discriminator="subagent")]
    return create_model(
        DECIDE,
        __doc__="Delegate tasks to subagents, or set done=true when the results suffice.",
        plan=(str, Field(description="one or two sentences: what is still needed and why")),
        delegate=(list[item], Field(default_factory=list, max_length=max_tasks)),  # type: ignore[valid-type]
        done=(bool, Field(description="true when the results already answer the request")),
    )


def _results_digest(results: Mapping[str, Any], limit: int = 6000) -> str:
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


def _roster(spec: Supervisor, state: Mapping[str, Any], runtime: Runtime[RunContext]) -> str:
    config = engine_for(runtime.context).config
    lines = []
    for s in spec.subagents:
        price = config.tier(s.tier).price
        lines.append(
            f"- {s.name} (tier {s.tier}, ${price.input}/${price.output} per 1M in/out): "
            f"{s.description}"
        )
    return "Subagents:\n" + "\n".join(lines)


def _budget_line(state: Mapping[str, Any]) -> str:
    """The budget left; it changes on every call, so it goes last (prompt prefixes stay cached)."""
    ledger = ledger_for(state)
    budget = ledger.budget_usd
    left = "unlimited" if budget is None else f"${budget - ledger.spent_usd:.6f} of ${budget:.6f}"
    return f"Budget left: {left}"


async def _planner_call(
    runtime: Runtime[RunContext],
    node: str,
    tier: str,
    state: SupervisorState,
    messages: list[Any],
    tool: Any,
    tool_choice: str,
) -> Any:
    """One forced tool call for the supervisor or answer node.

    Returns the CallOutcome, or the final state update when the call failed or was stopped.
    """
    engine = engine_for(runtime.context)
    ctx = context_of(runtime)
    try:
        out = await call_model(
            engine,
            CallSite(node=node, tier=tier),
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


# The supervisor's own fields: plain values (no reducer), overwritten by each write.
_PLAIN_FIELDS = frozenset(
    {"status", "turn", "plans", "delegated", "dispatch", "repairs", "answer", "answer_problems",
     "answer_retry", "answer_review"}
)  # fmt: skip


def _changes(state: Mapping[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` less the writes that change nothing.

    A plain field written with the value it holds (or an empty value where it has none), or
    an append of nothing, is dropped: every channel written is a row in a durable checkpointer.
    """
    out = {}
    for key, value in update.items():
        if key in _PLAIN_FIELDS:
            current = state.get(key)
            if current == value if key in state else not value:
                continue
        elif key in ("usage", "events") and not value:
            continue
        out[key] = value
    return out


def _task_key(name: str, task: Mapping[str, Any]) -> str:
    return f"{name}:{json.dumps(task, sort_keys=True)}"


def _after(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The state a router sees once ``update`` is applied (usage appended, results merged)."""
    view = {**state, **update}
    if "usage" in update:
        view["usage"] = [*(state.get("usage") or []), *update["usage"]]
    if "results" in update:
        view["results"] = merge_dict(state.get("results"), update["results"])
    return view


def _make_supervisor(spec: Supervisor, schema: type[BaseModel]) -> Callable[..., Any]:
    route = _route(spec)
    planner = Site(SiteKind.PLANNER, spec.tier)

    async def supervisor(state: SupervisorState, runtime: Runtime[RunContext]) -> Command[Any]:
        fresh = _new_run(state, context_of(runtime).budget_usd)
        view: Any = {**state, **fresh, "results": {}} if fresh else state
        update = await _turn(view, runtime)
        # The node names where the run goes (Command) instead of a conditional edge, which
        # LangGraph would run on a fresh copy of every channel of the state.
        goto = route(_after(view, update))
        return Command(update=_changes(state, {**fresh, **update}), goto=goto)

    async def _turn(state: SupervisorState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        turn = state.get("turn", 0)
        statuses = {r["status"] for r in (state.get("results") or {}).values()}
        if TaskStatus.STOPPED in statuses:
            return {"status": RunStatus.STOPPED.value, "dispatch": []}
        if (
            TaskStatus.BUDGET_EXHAUSTED in statuses
            or state.get("status") == RunStatus.BUDGET_EXHAUSTED
        ):
            # No more delegations: answer from the work that finished, if the budget allows.
            return {"status": RunStatus.BUDGET_EXHAUSTED.value, "dispatch": []}
        if turn >= spec.max_turns:
            return {"dispatch": [], "events": [event(EventKind.TURN_LIMIT, turn=turn)]}
        engine = engine_for(runtime.context)
        tier = start_tier(planner, context_of(runtime).policy, engine.config)
        system = SystemMessage(f"{spec.prompt.strip()}\n\n{_roster(spec, state, runtime)}")
        user = f"Request:\n{state.get('request', '')}\n\nTurn {turn + 1} of {spec.max_turns}."
        if state.get("results"):
            user += f"\n\nResults so far:\n{_results_digest(state['results'])}"
        if state.get("repairs"):
            user += "\n\nYour previous decision was invalid; follow the schema exactly."
        user += f"\n\n{_budget_line(state)}"
        messages = [system, HumanMessage(user)]
        out = await _planner_call(
            runtime, Node.SUPERVISOR.value, tier, state, messages, schema, DECIDE
        )
        if isinstance(out, dict):
            return {**out, "dispatch": []}
        return {**out.state_update(), **_decide(spec, schema, state, out.message)}

    return supervisor


def _decide(
    spec: Supervisor, schema: type[BaseModel], state: SupervisorState, msg: Any
) -> dict[str, Any]:
    turn = state.get("turn", 0)
    try:
        decision = schema.model_validate(msg.tool_calls[0]["args"]) if msg.tool_calls else None
    except ValidationError as exc:
        decision, problem = None, str(exc.errors()[0])
    else:
        problem = "no decision was returned"
    if decision is None:
        repairs = state.get("repairs", 0) + 1
        if repairs <= 1:
            return {"repairs": repairs, "dispatch": [{"retry": True}]}
        tasks = spec.fallback_plan(state) if spec.fallback_plan and not state.get("results") else []
        fallback = [{"subagent": n, "task": t.model_dump()} for n, t in tasks]
        return {
            "repairs": 0,
            "turn": turn + 1,
            **_dispatch(state, fallback, turn),
            "events": [event(EventKind.SUPERVISOR_FALLBACK, reason=problem, tasks=len(fallback))],
        }
    asked = [
        {"subagent": d.subagent, "task": d.task.model_dump()}
        for d in decision.delegate  # type: ignore[attr-defined]
    ]
    plans = [*(state.get("plans") or []), decision.plan]  # type: ignore[attr-defined]
    events: list[dict[str, Any]] = []
    done = [r for r in (state.get("results") or {}).values() if r["status"] == TaskStatus.DONE]
    if not done:
        # A subagent that works from earlier results has nothing to work from yet.
        needs = {s.name for s in spec.subagents if s.context != ContextPolicy.TASK}
        early = [a for a in asked if a["subagent"] in needs]
        if early:
            asked = [a for a in asked if a["subagent"] not in needs]
            events.append(event(EventKind.DEFERRED, reason="no results yet", tasks=len(early)))
    if state.get("results"):
        wanted = [] if decision.done else asked  # type: ignore[attr-defined]
    elif asked:
        wanted = asked  # nothing is known yet, so "done" cannot be right: run the delegations
    else:
        # Finishing before any work was delegated would answer from the model's memory alone.
        tasks = spec.fallback_plan(state) if spec.fallback_plan else []
        wanted = [{"subagent": n, "task": t.model_dump()} for n, t in tasks]
        events.append(
            event(
                EventKind.SUPERVISOR_FALLBACK,
                reason="finished before delegating any work",
                tasks=len(wanted),
            )
        )
    update = {"repairs": 0, "turn": turn + 1, "plans": plans, **_dispatch(state, wanted, turn)}
    update["events"] = [*events, *update.get("events", [])]
    return update


def _dispatch(state: SupervisorState, wanted: list[dict[str, Any]], turn: int) -> dict[str, Any]:
    delegated = list(state.get("delegated") or [])
    fresh, repeats = [], 0
    for i, item in enumerate(wanted):
        key = _task_key(item["subagent"], item["task"])
        if key in delegated:
            repeats += 1
            continue
        delegated.append(key)
        fresh.append({**item, "task_id": f"t{turn + 1}.{i + 1}-{item['subagent']}"})
    events = [event(EventKind.LOOP_DETECTED, repeats=repeats)] if repeats else []
    return {"delegated": delegated, "dispatch": fresh, "events": events}


def _route(spec: Supervisor) -> Callable[[Mapping[str, Any]], Any]:
    by_name = {s.name: s for s in spec.subagents}

    def route(state: Mapping[str, Any]) -> Any:
        if state.get("status") in (RunStatus.STOPPED, RunStatus.FAILED):
            end_run(state)
            return END
        dispatch = state.get("dispatch") or []
        if dispatch and dispatch[0].get("retry"):
            return Node.SUPERVISOR.value
        if not dispatch:
            return Node.ANSWER.value
        spent = run_spent_usd(state)
        sends = []
        for item in dispatch:
            sub = by_name[item["subagent"]]
            context = _context_for(sub, state)
            payload = subagent_input(item["task_id"], item["task"], state, context, spent_usd=spent)
            sends.append(Send(sub.name, payload))
        return sends

    return route


def _context_for(sub: Subagent, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    if sub.context == ContextPolicy.TASK:
        return []
    done = [
        {"subagent": r["subagent"], "task": r["task"], "output": r.get("output")}
        for r in (state.get("results") or {}).values()
        if r["status"] == TaskStatus.DONE
    ]
    if sub.context == ContextPolicy.FULL:
        done.insert(0, {"request": state.get("request"), "plans": state.get("plans") or []})
    return done


def _make_answer(spec: Supervisor) -> Callable[..., Any]:
    answer_tool = _answer_tool(spec)  # built once per spec, not per call
    answer_site = Site(SiteKind.ANSWER, spec.tier)

    async def answer(state: SupervisorState, runtime: Runtime[RunContext]) -> Command[str]:
        update = await _answer(state, runtime)
        return Command(update=_changes(state, update), goto=_after_answer(_after(state, update)))

    async def _answer(state: SupervisorState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        engine = engine_for(runtime.context)
        tier = start_tier(answer_site, context_of(runtime).policy, engine.config)
        user = f"Request:\n{state.get('request', '')}\n\nResults:\n{_results_digest(state.get('results') or {})}"
        if spec.answer_evidence:
            user += f"\n\n{await off_loop(True, spec.answer_evidence, state)}"
        problems = state.get("answer_problems") or []
        if problems:
            user += f"\n\nYour previous answer had problems: {problems[-1]}. Fix them."
        messages = [SystemMessage(spec.answer_prompt.strip()), HumanMessage(user)]
        out = await _planner_call(
            runtime, Node.ANSWER.value, tier, state, messages, answer_tool, ANSWER
        )
        if isinstance(out, dict):
            return {**out, "answer_retry": False}
        hooked = bool(spec.answer_normalize or spec.answer_verifier)
        checked = await off_loop(hooked, _check_answer, spec, state, out.message, problems)
        attended = context_of(runtime).policy.human
        status = checked.get("status")
        review = (
            attended
            and checked.get("answer") is not None
            and (
                (spec.review == "always" and status == RunStatus.ANSWERED)
                or (spec.review != "never" and status == RunStatus.UNVERIFIED)
            )
        )
        return {"answer_retry": False, "answer_review": review, **out.state_update(), **checked}

    return answer


def _answer_tool(spec: Supervisor) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": ANSWER,
            "description": "Write the final answer.",
            "parameters": spec.answer_schema.model_json_schema(),
        },
    }


def _check_answer(
    spec: Supervisor, state: SupervisorState, msg: Any, problems: list[str]
) -> dict[str, Any]:
    try:
        if not msg.tool_calls:
            raise InputError("no final_answer call was made")
        parsed = spec.answer_schema.model_validate(msg.tool_calls[0]["args"])
        if spec.answer_normalize:
            parsed = spec.answer_normalize(parsed, state)
        verdict = _answer_check(spec, parsed, state)
        reason = None if verdict.ok else verdict.reason or "the answer's check rejected it"
    except (ValidationError, ValueError) as exc:
        parsed, reason, verdict = None, str(exc)[:500], None
    notes = [verdict_event(CheckSite.ANSWER, verdict)] if spec.answer_verifier and verdict else []
    if reason and len(problems) < 1:
        return {"answer_problems": [*problems, reason], "answer_retry": True, "events": notes}
    if parsed is None:
        return {
            "status": RunStatus.FAILED.value,
            "answer_problems": [*problems, reason or "invalid"],
        }
    status = (RunStatus.UNVERIFIED if reason else RunStatus.ANSWERED).value
    if state.get("status") == RunStatus.BUDGET_EXHAUSTED:
        status = RunStatus.BUDGET_EXHAUSTED.value  # answered from the work the budget allowed
    return {
        "answer": parsed.model_dump(),
        "status": status,
        "answer_problems": [*problems, reason] if reason else problems,
        "events": notes,
    }


def _answer_check(spec: Supervisor, answer: BaseModel, state: Mapping[str, Any]) -> Verdict:
    """``spec.answer_verifier`` under the one check contract (accepted when there is none)."""
    if spec.answer_verifier is None:
        return Verdict.accept()
    declared = spec.answer_verifier
    check = as_check(lambda _request, answer, state: declared(answer, state))
    return check(str(state.get("request", "")), answer, state)


def _make_review(spec: Supervisor) -> Callable[..., Any]:
    async def review(state: SupervisorState) -> Command[str]:
        update = _review(state)
        return Command(update=update, goto=_after_answer(_after(state, update)))

    def _review(state: SupervisorState) -> dict[str, Any]:
        """An answer under review (unverified, or ``review="always"``): approve, edit or reject.

        A node of its own, so resuming re-runs only this question, never the paid answer call.
        """
        problems = state.get("answer_problems") or []

        def valid(decision: ReviewDecision) -> str | None:
            if decision.action != ReviewAction.EDIT:
                return None
            try:
                spec.answer_schema.model_validate(decision.value)
            except ValidationError as exc:
                return f"the edited answer does not match {spec.answer_schema.__name__}: {exc}"
            return None

        unverified = state.get("status") == RunStatus.UNVERIFIED
        why = (
            f"The answer's checks failed: {problems[-1] if problems else 'unverified'}. "
            if unverified
            else "The answer passed its checks and needs your approval. "
        )
        decision = ask_human(
            InterruptKind.ANSWER_REVIEW,
            why + "Approve it as it is, edit it (value: the corrected answer), or reject it.",
            check=valid,
            subject=("final_answer", state.get("answer")),
            answer=state.get("answer"),
            problems=problems,
            result_schema=spec.answer_schema.model_json_schema(),
        )
        note = event(EventKind.HUMAN_DECISION, node=Node.ANSWER.value, action=decision.action,
                     note=decision.note)  # fmt: skip
        update: dict[str, Any] = {"answer_review": False, "events": [note]}
        if decision.action == ReviewAction.APPROVE:
            update["status"] = RunStatus.ANSWERED.value
        elif decision.action == ReviewAction.EDIT:
            edited = spec.answer_schema.model_validate(decision.value).model_dump()
            update |= {"answer": edited, "status": RunStatus.ANSWERED.value}
        elif not unverified:  # an approval refused: the answer is not the run's answer
            update["status"] = RunStatus.REJECTED.value
        return update

    return review


def _after_answer(state: Mapping[str, Any]) -> str:
    if state.get("answer_retry"):
        return Node.ANSWER.value
    if state.get("answer_review"):
        return Node.REVIEW.value
    end_run(state)
    return END


_ENDED = {
    RunStatus.ANSWERED,
    RunStatus.REJECTED,
    RunStatus.UNVERIFIED,
    RunStatus.STOPPED,
    RunStatus.BUDGET_EXHAUSTED,
    RunStatus.FAILED,
}


def _new_run(state: SupervisorState, budget_usd: float | None = None) -> dict[str, Any]:
    """The per-run fields to reset when the supervisor starts a new run, else nothing.

    The supervisor is entered from START only with new input; a thread whose last run ended
    (or a fresh thread) starts a new run: fresh run id (hence budget), turns and results.
    Doing this here rather than in a node of its own saves a super-step per run.
    """
    if state.get("run_id") and state.get("status") not in _ENDED:
        return {}
    return {
        **begin_run(state, budget_usd),
        "status": RunStatus.RUNNING.value,
        "turn": 0,
        "plans": [],
        "delegated": [],
        "dispatch": [],
        "repairs": 0,
        "answer": None,
        "answer_problems": [],
        "answer_retry": False,
        **({"results": cleared()} if state.get("results") else {}),
    }


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
        supervisor, _make_supervisor(spec, schema), destinations=(*names, supervisor, answer, END)
    )
    builder.add_node(answer, _make_answer(spec), destinations=(answer, Node.REVIEW.value, END))
    builder.add_node(Node.REVIEW.value, _make_review(spec), destinations=(END,))
    for sub in spec.subagents:
        builder.add_node(sub.name, subagent_node(sub), metadata=SUBAGENT_NODE)
        builder.add_edge(sub.name, supervisor)
    builder.add_edge(START, supervisor)
    return builder
