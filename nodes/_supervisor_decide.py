"""The supervisor's decision turn: prompt, decision schema, guards, fallback plan, dispatch."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel, Field, ValidationError, create_model

from tierflow.budget import end_run, ledger_for, run_spent_usd
from tierflow.nodes._supervisor_call import planner_call, results_digest
from tierflow.nodes._supervisor_state import (
    Delegation,
    Dispatch,
    RetryTurn,
    SupervisorState,
    after,
    changes,
    new_run,
)
from tierflow.nodes.human import event
from tierflow.nodes.subagent import ContextPolicy, Subagent, off_loop, subagent_input
from tierflow.protocol import EventKind, Node, RunStatus, TaskStatus, ToolName
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.tiers import Site, SiteKind, start_tier

if TYPE_CHECKING:
    from tierflow.nodes.supervisor import Supervisor

__all__ = ["DECIDE", "decision_schema", "make_supervisor"]

DECIDE = ToolName.DECIDE.value


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


def make_supervisor(spec: Supervisor, schema: type[BaseModel]) -> Callable[..., Any]:
    """The supervisor node: one decision per turn, routed with ``Command`` to where it leads."""
    route = _route(spec)
    planner = Site(SiteKind.PLANNER, spec.tier)

    async def supervisor(state: SupervisorState, runtime: Runtime[RunContext]) -> Command[Any]:
        fresh = new_run(state, context_of(runtime).budget_usd)
        view: Any = {**state, **fresh, "results": {}} if fresh else state
        update = await _turn(view, runtime)
        # The node names where the run goes (Command) instead of a conditional edge, which
        # LangGraph would run on a fresh copy of every channel of the state.
        goto = route(after(view, update))
        return Command(update=changes(state, {**fresh, **update}), goto=goto)

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
        first = turn == 0 and not state.get("results") and context_of(runtime).shortcuts
        if first and spec.first_round:
            planned = await off_loop(True, spec.first_round, state)
            if planned:
                return _first_round(state, planned)
        if state.get("results") and spec.enough and await off_loop(True, spec.enough, state):
            # The results answer the request by the graph's own test: no planning call.
            note = event(EventKind.SHORTCUT, node=Node.SUPERVISOR.value, reason="enough")
            return {"dispatch": [], "turn": turn + 1, "events": [note]}
        engine = engine_for(runtime.context)
        tier = start_tier(planner, context_of(runtime).policy, engine.config)
        system = SystemMessage(f"{spec.prompt.strip()}\n\n{_roster(spec, state, runtime)}")
        user = f"Request:\n{state.get('request', '')}\n\nTurn {turn + 1} of {spec.max_turns}."
        if state.get("results"):
            user += f"\n\nResults so far:\n{results_digest(state['results'])}"
        if state.get("repairs"):
            user += "\n\nYour previous decision was invalid; follow the schema exactly."
        user += f"\n\n{_budget_line(state)}"
        messages = [system, HumanMessage(user)]
        out = await planner_call(
            runtime, Node.SUPERVISOR.value, tier, state, messages, schema, DECIDE
        )
        if isinstance(out, dict):
            return {**out, "dispatch": []}
        return {**out.state_update(), **_decide(spec, schema, state, out.message)}

    return supervisor


def _first_round(
    state: SupervisorState, planned: Sequence[tuple[str, BaseModel]]
) -> dict[str, Any]:
    """The graph's own first round (``Supervisor.first_round``), dispatched with no model call."""
    wanted = _delegations(planned)
    plan = "first round planned without a model: " + ", ".join(
        f"{d['subagent']} {json.dumps(d['task'], sort_keys=True)}" for d in wanted
    )
    note = event(EventKind.SHORTCUT, node=Node.SUPERVISOR.value, reason="first_round",
                 tasks=len(wanted))  # fmt: skip
    update = {
        "turn": 1,
        "plans": [*(state.get("plans") or []), plan],
        **_dispatch(state, wanted, 0),
    }
    update["events"] = [note, *update.get("events", [])]
    return update


def _decide(
    spec: Supervisor, schema: type[BaseModel], state: SupervisorState, msg: Any
) -> dict[str, Any]:
    """The update a decision makes: its plan and the delegations it dispatches."""
    turn = state.get("turn", 0)
    try:
        decision = schema.model_validate(msg.tool_calls[0]["args"]) if msg.tool_calls else None
    except ValidationError as exc:
        decision, problem = None, str(exc.errors()[0])
    else:
        problem = "no decision was returned"
    if decision is None:
        return _unusable(spec, state, problem)
    asked: list[Delegation] = [
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
        wanted = _fallback(spec, state)
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


def _unusable(spec: Supervisor, state: SupervisorState, problem: str) -> dict[str, Any]:
    """An unusable decision: ask once more, then run the fallback plan (if nothing ran yet)."""
    repairs = state.get("repairs", 0) + 1
    if repairs <= 1:
        retry: list[RetryTurn] = [{"retry": True}]
        return {"repairs": repairs, "dispatch": retry}
    fallback = _fallback(spec, state) if not state.get("results") else []
    turn = state.get("turn", 0)
    return {
        "repairs": 0,
        "turn": turn + 1,
        **_dispatch(state, fallback, turn),
        "events": [event(EventKind.SUPERVISOR_FALLBACK, reason=problem, tasks=len(fallback))],
    }


def _fallback(spec: Supervisor, state: SupervisorState) -> list[Delegation]:
    """The spec's fallback plan as delegations (none without one)."""
    return _delegations(spec.fallback_plan(state) if spec.fallback_plan else [])


def _delegations(tasks: Sequence[tuple[str, BaseModel]]) -> list[Delegation]:
    """A graph's own ``(subagent, task)`` plan (first round, fallback) as delegations."""
    return [{"subagent": n, "task": t.model_dump()} for n, t in tasks]


def _task_key(name: str, task: Mapping[str, Any]) -> str:
    return f"{name}:{json.dumps(task, sort_keys=True)}"


def _dispatch(state: SupervisorState, wanted: Sequence[Delegation], turn: int) -> dict[str, Any]:
    """The delegations not made before, each with its task id; a repeat is a loop, not a task."""
    delegated = list(state.get("delegated") or [])
    fresh: list[Dispatch] = []
    repeats = 0
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
        return _sends(by_name, dispatch, state)

    return route


def _sends(
    by_name: Mapping[str, Subagent], dispatch: Sequence[Dispatch], state: Mapping[str, Any]
) -> list[Send]:
    """One ``Send`` per delegation: the task, its context and the run's budget as numbers."""
    spent = run_spent_usd(state)
    sends = []
    for item in dispatch:
        sub = by_name[item["subagent"]]
        context = _context_for(sub, state)
        payload = subagent_input(item["task_id"], item["task"], state, context, spent_usd=spent)
        sends.append(Send(sub.name, payload))
    return sends


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
