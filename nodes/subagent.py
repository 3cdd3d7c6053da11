"""Subagent factory: one node that runs a task as a loop of phases bound to a tier.

The phases are step -> tools -> step ... -> finish, each a checkpointed LangGraph task (see
:func:`subagent_node`). Each ``step`` makes exactly one model request. Poor answers and errors climb the
tier ladder in ``escalate`` (see :mod:`tierflow.nodes.escalation`) with the transcript kept, so work
already done (tool results) is not redone.

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

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, get_type_hints

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph import func
from langgraph.config import get_config
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict

from tierflow.budget import budget_of, ledger_for, run_id_of, run_spent_usd
from tierflow.calling import CallSite, call_model, emit, tool_dicts
from tierflow.errors import ModelCallError
from tierflow.nodes.actions import (
    FINISH,
    NEXT_ACTION,
    Finish,
    Invalid,
    ToolCall,
    finish_tool_schema,
    forced_action_schema,
    parse_forced,
    parse_native,
)
from tierflow.nodes.escalation import escalate_node
from tierflow.nodes.human import event
from tierflow.nodes.verifier import CheckFn, CheckSite, as_check, verdict_event
from tierflow.protocol import (
    PHASE_EDGES,
    SUBAGENT_NODE,
    EscalationReason,
    EventKind,
    Node,
    StreamEvent,
    TaskStatus,
)
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.state import max_budget, merge_dict, merge_events
from tierflow.tiers import Site, SiteKind, start_tier
from tierflow.usage import merge_usage

__all__ = [
    "ContextPolicy", "Subagent", "SubagentResult", "build_subagent", "subagent_node",
    "subagent_input", "off_loop", "PHASE_EDGES", "SUBAGENT_NODE", "resample",
]  # fmt: skip

T = TypeVar("T")


class ContextPolicy(StrEnum):
    """What a subagent sees besides its system prompt."""

    TASK = "task"  # only its typed task payload (default: cheapest, least distracting)
    TASK_AND_RESULTS = "task+results"  # plus the outputs of tasks already finished in this run
    FULL = "full"  # plus the supervisor's plan and the user's request


@dataclass(frozen=True)
class Subagent:
    """Declaration of one subagent.

    Attributes:
        name: node name and routing label.
        description: what it is good at (the supervisor routes on this).
        tier: the tier it starts on; escalation climbs from there.
        task_schema: typed payload the supervisor must fill.
        output_schema: what ``finish`` must return.
        prompt: system prompt.
        tools: tools, or a function of the run's ``env`` returning them (e.g. a sandbox root).
        context: :class:`ContextPolicy`.
        max_steps: model steps per tier before it must finish.
        max_repairs: invalid answers tolerated on one tier before escalating.
        verifier: a check (:class:`~tierflow.nodes.verifier.Check`) of the finished output:
            ``(task, output, env) -> Verdict``, or ``-> reason | None`` (a reason rejects);
            each verdict is a ``verified`` event.
        human_fallback: after the top tier, ask a human instead of failing the task.
        prefetch: ``(task, env) -> text`` of deterministic work (e.g. a first grep) shown with
            the task, so a small model starts from evidence instead of spending a step on it.
        shortcut: ``(task, env) -> output | None``: deterministic work that can finish the task
            by itself (e.g. grep found the definition asked for). An output that passes
            ``normalize`` and the verifier ends the task with no model call (``tier`` is
            ``"deterministic"``); otherwise the model starts as usual.
        normalize: ``(task, output, env) -> output`` deterministic clean-up applied to a
            finished output before the verifier (e.g. snap a cited line to where the quoted
            code really is).
        max_tool_chars: a tool result longer than this is cut (with a note) in the transcript.
        tool_timeout_s: a tool call that takes longer is abandoned and the model is told so
            (a sync tool's thread cannot be stopped, but the task goes on).
        max_context_chars: in ``forced`` mode (small local models, small context windows) the
            oldest steps are left out of the request, not the state, beyond this size.
        read_reply: for a subagent without tools: ``reply text -> output | None``. The model
            answers in plain text, in the form ``prompt`` asks for (no tool call, no JSON
            grammar: small models reason better and decode several times faster that way),
            and this turns the reply into the output (None: the reply is invalid).
        max_output_tokens: cap of each request's output, below the tier's own (None: the
            tier's): a one-letter answer needs a few tokens.
        render_task: ``task -> text`` of the opening message (default: the task as JSON under
            its schema's name); e.g. a question with lettered choices, as benchmarks pose it.
        answer_tools: ``task -> OpenAI tool dicts`` offered with native tool calling, whose
            calls ARE the answer (never run): the output is ``output_schema(calls=[{"name",
            "arguments"}, ...])``, none when the model replies in text. What a benchmark of
            tool calling (BFCL) measures against answers forced into a schema.
    """

    name: str
    description: str
    tier: str
    task_schema: type[BaseModel]
    output_schema: type[BaseModel]
    prompt: str
    tools: Sequence[BaseTool] | Callable[[Mapping[str, Any]], Sequence[BaseTool]] = ()
    context: ContextPolicy = ContextPolicy.TASK
    max_steps: int = 6
    max_repairs: int = 1
    verifier: CheckFn | None = None
    human_fallback: bool = True
    prefetch: Callable[[BaseModel, Mapping[str, Any]], str] | None = None
    shortcut: Callable[[BaseModel, Mapping[str, Any]], BaseModel | None] | None = None
    normalize: Callable[[BaseModel, BaseModel, Mapping[str, Any]], BaseModel] | None = None
    max_tool_chars: int = 4000
    tool_timeout_s: float = 30.0
    max_context_chars: int = 12000
    read_reply: Callable[[str], BaseModel | None] | None = None
    max_output_tokens: int | None = None
    render_task: Callable[[BaseModel], str] | None = None
    answer_tools: Callable[[BaseModel], list[dict[str, Any]]] | None = None

    def tools_for(self, env: Mapping[str, Any]) -> list[BaseTool]:
        """The tools of this subagent for a run's ``env``."""
        return list(self.tools(env) if callable(self.tools) else self.tools)


class SubagentResult(BaseModel):
    """What a subagent hands back to its parent graph."""

    task_id: str
    subagent: str
    task: dict[str, Any]
    status: Literal["done", "failed", "stopped", "budget_exhausted"]
    output: dict[str, Any] | None = None
    tier: str
    steps: int = 0
    escalations: list[dict[str, Any]] = []
    error: str | None = None


class TaskRun(TypedDict):
    """The run a task belongs to, as numbers: its id, budget and spend at dispatch."""

    id: str
    budget_usd: float | None
    spent_usd: float


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
    # Answers a verifier sent back to this tier, oldest first: {"answer": text, "reason": why
    # it was rejected, "ask": what the tier is asked next}. Shown after the task, so the tier
    # fixes its answer (a cascade's repair).
    feedback: list[dict[str, str]]


class SubagentOutput(TypedDict, total=False):
    """What flows back into the parent's state.

    ``budget_usd`` is set only when a human raised the budget at a gate inside the task.
    """

    results: Annotated[dict[str, Any], merge_dict]
    usage: Annotated[list[dict[str, Any]], merge_usage]
    budget_usd: Annotated[float | None, max_budget]
    events: Annotated[list[dict[str, Any]], merge_events]


class SubagentState(SubagentInput, SubagentOutput, total=False):
    """The channels of a subagent graph run on its own (:func:`build_subagent`)."""


class TaskView(SubagentInput, SubagentOutput, total=False):
    """A task's state while it runs: its input, what flows back, and its working fields.

    It lives in memory inside the task's node; each phase's result (one model step, one
    round of tool calls, one escalation) is checkpointed as it completes (see
    :func:`subagent_node`), never the whole view.
    """

    tier: str
    transcript: list[BaseMessage]
    steps: int
    tier_start_step: int
    repairs: int
    pending: list[dict[str, Any]]
    seen_calls: list[str]
    loop_warned: bool
    escalation: dict[str, Any] | None
    escalations: list[dict[str, Any]]
    outcome: dict[str, Any] | None


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


def _system_prompt(spec: Subagent, tools: list[BaseTool], forced: bool, must_finish: bool) -> str:
    if (spec.read_reply is not None or spec.answer_tools is not None) and not tools:
        return spec.prompt.strip()  # a plain-text answer or native calls, as the prompt asks
    lines = [spec.prompt.strip()]
    if tools:
        lines.append(
            "Tools: " + "; ".join(f"{t.name}: {t.description.splitlines()[0]}" for t in tools)
        )
    how = f"call '{NEXT_ACTION}' with one action" if forced and tools else "call one tool"
    if not tools:
        how = f"call '{FINISH}' with the result"
    lines.append(f"Work step by step: each turn, {how}. When you have the answer, use '{FINISH}'.")
    if must_finish:
        lines.append(f"You are out of steps: use '{FINISH}' now with the best result you have.")
    return "\n".join(lines)


def _opening(spec: Subagent, state: TaskView) -> list[BaseMessage]:
    if spec.render_task is not None:
        parts = [spec.render_task(_task(spec, state))]
    else:
        parts = [f"Task ({spec.task_schema.__name__}):\n{json.dumps(state.get('task'))}"]
    if spec.context != ContextPolicy.TASK and state.get("context"):
        parts.append("Context:\n" + json.dumps(state["context"], default=str))
    if spec.prefetch is not None:
        env = state.get("env") or {}
        try:
            parts.append(spec.prefetch(_task(spec, state), env))
        except (ToolException, OSError, ValueError) as exc:  # a bad query: no head start
            parts.append(f"(prefetch found nothing: {exc})")
    opening: list[BaseMessage] = [HumanMessage("\n\n".join(parts))]
    for sent_back in state.get("feedback") or []:
        opening += [AIMessage(sent_back["answer"]), HumanMessage(sent_back["ask"])]
    return opening


def _fit(transcript: list[BaseMessage], max_chars: int) -> list[BaseMessage]:
    """The opening message plus as many recent messages as fit in ``max_chars``."""
    if sum(len(str(m.content)) for m in transcript) <= max_chars or len(transcript) < 3:
        return transcript
    head, size = transcript[0], len(str(transcript[0].content))
    kept: list[BaseMessage] = []
    for msg in reversed(transcript[1:]):
        size += len(str(msg.content))
        if size > max_chars and kept:
            break
        kept.append(msg)
    dropped = len(transcript) - 1 - len(kept)
    note = HumanMessage(f"({dropped} earlier steps left out to fit the context window.)")
    return [head, note, *reversed(kept)]


def _render_call(call: ToolCall, forced: bool) -> AIMessage:
    if forced:
        return AIMessage(f"Action: {call.name}({json.dumps(call.args)})")
    return AIMessage("", tool_calls=[{"name": call.name, "args": call.args, "id": call.id}])


class _Offer(NamedTuple):
    """What one step offers the model: tools, schemas and the parser of its answer."""

    tools: list[BaseTool]
    offered: list[Any]
    choice: str
    parse: Callable[[AIMessage], Any]


def _read_text(spec: Subagent, msg: AIMessage) -> Any:
    """A plain-text reply as a ``finish`` of the output ``read_reply`` makes of it."""
    assert spec.read_reply is not None
    text = msg.content if isinstance(msg.content, str) else str(msg.content)
    try:
        output = spec.read_reply(text)
    except (ValidationError, ValueError) as exc:
        return Invalid(f"the reply could not be read as {spec.output_schema.__name__}: {exc}")
    if output is None:
        return Invalid(f"no {spec.output_schema.__name__} could be read from the reply; answer "
                       "in the form the instructions give")  # fmt: skip
    return Finish(output)


def _answer_offer(spec: Subagent, task: BaseModel) -> _Offer:
    """The task's own functions, offered natively; the calls made are the output."""
    assert spec.answer_tools is not None

    def parse(msg: AIMessage) -> Any:
        calls = [{"name": c["name"], "arguments": dict(c["args"])} for c in msg.tool_calls]
        try:
            return Finish(spec.output_schema.model_validate({"calls": calls}))
        except ValidationError as exc:
            return Invalid(f"the calls do not fit {spec.output_schema.__name__}: {exc}")

    return _Offer([], tool_dicts(spec.answer_tools(task)), "auto", parse)


def _offers(spec: Subagent) -> Callable[[Mapping[str, Any], bool, bool], _Offer]:
    """Per spec: tools and schemas built once per (env, mode), not on every call."""
    cache: dict[tuple[str, bool, bool], _Offer] = {}
    finish = [finish_tool_schema(spec.output_schema)]

    def offer(env: Mapping[str, Any], forced: bool, must_finish: bool) -> _Offer:
        # Only tools built from the env depend on it (and serialising it costs a call).
        scope = json.dumps(env, sort_keys=True, default=str) if callable(spec.tools) else ""
        key = (scope, forced, must_finish)
        hit = cache.get(key)
        if hit is not None:
            return hit
        tools = [] if must_finish else spec.tools_for(env)
        native = lambda m: parse_native(m, spec.output_schema)  # noqa: E731
        if not tools and spec.read_reply is not None:
            hit = _Offer(tools, [], "", lambda m: _read_text(spec, m))
        elif not tools:
            hit = _Offer(tools, tool_dicts(finish), FINISH, native)
        elif forced:
            action_schema = forced_action_schema(tools, spec.output_schema)
            hit = _Offer(
                tools, tool_dicts([action_schema]), NEXT_ACTION,
                lambda m: parse_forced(m, action_schema),
            )  # fmt: skip
        else:
            hit = _Offer(tools, tool_dicts([*tools, *finish]), "any", native)
        if len(cache) > 64:
            cache.clear()
        cache[key] = hit
        return hit

    return offer


def _make_step(spec: Subagent) -> Callable[..., Any]:
    offers = _offers(spec)
    tier_site = Site(SiteKind.SUBAGENT, spec.tier)

    async def step(state: TaskView, runtime: Runtime[RunContext]) -> dict[str, Any]:
        first = not state.get("steps") and not state.get("transcript")
        if spec.shortcut is not None and first and context_of(runtime).shortcuts:
            done = await off_loop(True, _shortcut, spec, state)
            if done is not None:
                return _finished(spec, state, done)
        engine = engine_for(runtime.context)
        policy = context_of(runtime).policy
        tier = state.get("tier") or start_tier(tier_site, policy, engine.config)
        forced = engine.config.tier(tier).tool_mode == "forced"
        # Each tier gets its own max_steps; steps keeps counting across tiers for reports.
        steps_here = state.get("steps", 0) - state.get("tier_start_step", 0)
        must_finish = steps_here >= spec.max_steps - 1
        env = state.get("env") or {}
        # Tools built for the run's env, and the prefetch, do file work.
        offer = await off_loop(callable(spec.tools), offers, env, forced, must_finish)
        if spec.answer_tools is not None:
            offer = _answer_offer(spec, _task(spec, state))
        transcript = list(state.get("transcript") or [])
        if not transcript:
            transcript = await off_loop(bool(spec.prefetch), _opening, spec, state)
        system = SystemMessage(_system_prompt(spec, offer.tools, forced, must_finish))
        sent = _fit(transcript, spec.max_context_chars) if forced else transcript
        history = state.get("escalations")
        site = CallSite(
            node=spec.name,
            tier=tier,
            subagent=spec.name,
            task_id=state.get("task_id"),
            escalation_reason=history[-1].get("reason") if history else None,
        )
        try:
            out = await call_model(
                engine,
                site,
                state,
                [system, *sent],
                tools=offer.offered,
                tool_choice=offer.choice or None,
                retry=context_of(runtime).retry,
                policy=policy,
                max_tokens=spec.max_output_tokens,
            )
        except ModelCallError as exc:
            # Keep the transcript so the next tier still sees the task and the work so far.
            return {
                "usage": exc.records,
                "transcript": transcript,
                "escalation": {"reason": EscalationReason.ERROR.value, "detail": str(exc)},
            }
        update: dict[str, Any] = {**out.state_update(), "transcript": transcript}
        if out.tier != state.get("tier"):
            update["tier"] = out.tier
        if out.stopped or out.message is None:
            status = TaskStatus(out.stopped or TaskStatus.STOPPED).value
            stopped = {"status": status, "error": "; ".join(out.notes)}
            return _finished(spec, state, {**update, "outcome": stopped})
        action = offer.parse(out.message)
        hooked = isinstance(action, Finish) and bool(spec.normalize or spec.verifier)
        applied = await off_loop(
            hooked, _apply, spec, state, action, out.message, transcript, forced
        )
        return _finished(spec, state, {**update, **applied})

    return step


async def resample(
    spec: Subagent,
    task: Mapping[str, Any],
    tier: str,
    state: Mapping[str, Any],
    runtime: Runtime[RunContext],
    *,
    node: str,
    params: Mapping[str, Any],
) -> tuple[BaseModel | None, list[dict[str, Any]]]:
    """One more answer to a tool-less task's first request, with other sampling ``params``.

    The request is the one the task's first step made (same system prompt and opening), so a
    verifier comparing answers (agreement of two samples) asks exactly what the task asked;
    it is recorded under ``node``. Returns (the output, or None when the answer was invalid
    or the call failed; the usage records).
    """
    engine = engine_for(runtime.context)
    forced = engine.config.tier(tier).tool_mode == "forced"
    env = (state.get("env") or {}) if isinstance(state, Mapping) else {}
    offer = _offers(spec)(env, forced, False)
    if spec.answer_tools is not None:
        offer = _answer_offer(spec, spec.task_schema.model_validate(dict(task)))
    view: Any = {"task": dict(task), "env": env}
    opening = await off_loop(bool(spec.prefetch), _opening, spec, view)
    system = SystemMessage(_system_prompt(spec, offer.tools, forced, False))
    site = CallSite(node=node, tier=tier, subagent=spec.name, task_id=state.get("task_id"))
    try:
        out = await call_model(
            engine, site, state, [system, *opening], tools=offer.offered,
            tool_choice=offer.choice or None, retry=context_of(runtime).retry,
            policy=context_of(runtime).policy, params=params, max_tokens=spec.max_output_tokens,
        )  # fmt: skip
    except ModelCallError as exc:
        return None, exc.records
    if out.message is None:
        return None, out.records
    action = offer.parse(out.message)
    return (action.output if isinstance(action, Finish) else None), out.records


def _apply(
    spec: Subagent,
    state: TaskView,
    action: Any,
    msg: AIMessage,
    transcript: list[BaseMessage],
    forced: bool,
) -> dict[str, Any]:
    steps = state.get("steps", 0) + 1
    if isinstance(action, Invalid):
        repairs = state.get("repairs", 0) + 1
        shown = AIMessage(
            str(msg.content) or json.dumps([c["args"] for c in msg.tool_calls])[:2000]
        )
        fix = HumanMessage(f"That answer was invalid: {action.error}. Try again.")
        update = {"steps": steps, "repairs": repairs, "transcript": [*transcript, shown, fix]}
        if repairs > spec.max_repairs:
            update["escalation"] = {
                "reason": EscalationReason.SCHEMA_VALIDATION.value,
                "detail": action.error,
            }
        return update
    if isinstance(action, Finish):
        env = state.get("env") or {}
        task = _task(spec, state)
        output = spec.normalize(task, action.output, env) if spec.normalize else action.output
        done = {"status": TaskStatus.DONE.value, "output": output.model_dump()}
        if spec.verifier is None:
            return {"steps": steps, "outcome": done}
        verdict = as_check(spec.verifier)(task, output, env)
        notes = [verdict_event(CheckSite.SUBAGENT, verdict, subagent=spec.name,
                               task_id=state.get("task_id"))]  # fmt: skip
        if verdict.ok:
            return {"steps": steps, "outcome": done, "events": notes}
        rejection = verdict.reason or "the verifier rejected it"
        note = HumanMessage(f"The result was rejected by the verifier: {rejection}. Fix it.")
        return {
            "steps": steps,
            "transcript": [*transcript, note],
            "escalation": {"reason": EscalationReason.VERIFIER_REJECTED.value, "detail": rejection},
            "events": notes,
        }
    calls: list[ToolCall] = action
    seen = list(state.get("seen_calls") or [])
    repeats = [c for c in calls if c.key in seen]
    if repeats:
        if state.get("loop_warned"):
            return {
                "steps": steps,
                "escalation": {
                    "reason": EscalationReason.LOOP_DETECTED.value,
                    "detail": repeats[0].key,
                },
            }
        warn = HumanMessage(
            f"You already called {repeats[0].name} with these arguments; its result is above. "
            f"Do something different or use '{FINISH}'."
        )
        return {"steps": steps, "loop_warned": True, "transcript": [*transcript, warn]}
    rendered = [_render_call(c, forced) for c in calls]
    return {
        "steps": steps,
        "seen_calls": seen + [c.key for c in calls],
        "pending": [{"name": c.name, "args": c.args, "id": c.id, "forced": forced} for c in calls],
        "transcript": [*transcript, *rendered],
    }


def _shortcut(spec: Subagent, state: TaskView) -> dict[str, Any] | None:
    """The task's outcome from ``spec.shortcut`` when it holds up, else None (the model works)."""
    assert spec.shortcut is not None
    env, task = state.get("env") or {}, _task(spec, state)
    try:
        output = spec.shortcut(task, env)
        if output is None:
            return None
        if spec.normalize:
            output = spec.normalize(task, output, env)
        # Not recorded as a verdict: a rejected shortcut is no outcome (the model does the
        # task, and its answer is checked), an accepted one is the shortcut event.
        if spec.verifier and not as_check(spec.verifier)(task, output, env).ok:
            return None
    except Exception:  # noqa: BLE001 - a failed shortcut only means the model does the work
        return None
    note = event(EventKind.SHORTCUT, subagent=spec.name, task_id=state.get("task_id"))
    return {
        "outcome": {"status": TaskStatus.DONE.value, "output": output.model_dump(),
                    "tier": DETERMINISTIC},
        "events": [note],
    }  # fmt: skip


# The tier a task reports when it finished without a model (``Subagent.shortcut``).
DETERMINISTIC = "deterministic"


def _task(spec: Subagent, state: TaskView) -> BaseModel:
    return spec.task_schema.model_validate(state.get("task") or {})


async def off_loop(hooked: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when ``hooked``, else inline.

    Graph hooks (shortcut, prefetch, normalize, verifier, tool building) do file work, which
    must stay off the event loop: ``langgraph dev`` fails runs that block it.
    """
    return await asyncio.to_thread(fn, *args) if hooked else fn(*args)


def _make_tools_node(spec: Subagent) -> Callable[..., Any]:
    async def run_tools(state: TaskView) -> dict[str, Any]:
        env = state.get("env") or {}
        tools = await off_loop(callable(spec.tools), spec.tools_for, env)
        by_name = {t.name: t for t in tools}
        results: list[BaseMessage] = []
        for call in state.get("pending") or []:
            text = await _run_tool(by_name, call["name"], call["args"], spec.tool_timeout_s)
            if len(text) > spec.max_tool_chars:
                cut = text.count("\n", spec.max_tool_chars)
                text = (
                    text[: spec.max_tool_chars] + f"\n... ({cut} more lines cut; narrow the call)"
                )
            if call.get("forced"):
                results.append(HumanMessage(f"Result of {call['name']}:\n{text}"))
            else:
                results.append(ToolMessage(text, tool_call_id=call["id"], name=call["name"]))
        return {"pending": [], "transcript": [*(state.get("transcript") or []), *results]}

    return run_tools


async def _run_tool(
    by_name: Mapping[str, BaseTool], name: str, args: dict[str, Any], timeout_s: float
) -> str:
    tool = by_name.get(name)
    if tool is None:
        return f"Error: there is no tool '{name}'. Available: {', '.join(sorted(by_name))}."
    started = time.monotonic()
    try:
        return str(await asyncio.wait_for(tool.ainvoke(args), timeout_s))
    except TimeoutError:
        return f"Error: {name} did not finish within {timeout_s:g} s; call it on less (a narrower path or pattern)."
    except ValidationError as exc:
        return (
            f"Error: bad arguments for {name}: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})"
        )
    except Exception as exc:  # noqa: BLE001 - tool errors are shown to the model, not raised
        return f"Error from {name}: {exc}"
    finally:
        elapsed = time.monotonic() - started
        emit({"event": StreamEvent.TOOL_CALL.value, "tool": name, "elapsed_s": round(elapsed, 3),
              "timeout_s": timeout_s, "timed_out": elapsed >= timeout_s})  # fmt: skip


def _finished(spec: Subagent, state: Mapping[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` plus the task's result when it ends the task (an ``outcome`` is set).

    The node that decides the outcome hands the result back itself, so a task that finishes
    in one step costs one super-step (and one checkpoint), not two.
    """
    outcome = update.get("outcome")
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


def _make_escalate(spec: Subagent) -> Callable[..., Any]:
    climb = escalate_node(spec.tier, spec.output_schema, spec.human_fallback, spec.name)

    async def escalate(state: TaskView, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return _finished(spec, state, await climb(state, runtime))

    return escalate


# Phase names go to LangGraph (task names in checkpoints and traces) as plain strings.
_STEP, _TOOLS, _ESCALATE = Node.STEP.value, Node.TOOLS.value, Node.ESCALATE.value
# The reducers SubagentOutput declares (Annotated[..., reducer]): the loop merges each
# phase's update into the task's view the way the parent's channels will.
_REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    k: hint.__metadata__[0]
    for k, hint in get_type_hints(SubagentOutput, include_extras=True).items()
}
_OUTPUT_KEYS = tuple(_REDUCERS)


def _next(view: Mapping[str, Any]) -> str:
    """The phase a task runs next, or END once it has an outcome."""
    if view.get("outcome"):
        return END
    if view.get("escalation"):
        return _ESCALATE
    if view.get("pending"):
        return _TOOLS
    return _STEP


def _merged(view: Mapping[str, Any], update: Mapping[str, Any]) -> TaskView:
    """``view`` with one phase's update applied (output channels through their reducers)."""
    out: dict[str, Any] = dict(view)
    for key, value in update.items():
        reducer = _REDUCERS.get(key)
        out[key] = reducer(out.get(key), value) if reducer else value
    return out  # type: ignore[return-value]


def subagent_node(spec: Subagent) -> Callable[..., Any]:
    """The node that runs one task of ``spec`` (the target of a ``Send``) to its outcome.

    A task is a loop of phases (``step``: one model request; ``tools``: the calls it asked
    for; ``escalate``: one climb of the ladder), each run as a LangGraph task
    (``langgraph.func.task``): its result is checkpointed as a write the moment it completes.
    After an interrupt (a budget gate, a human at the top of the ladder) or a crash, the node
    runs again and the finished phases replay from those writes, so no model request or tool
    call is made twice; the interrupted phase asks its question again and gets the answer.
    A subgraph per task would do the same with three checkpoints per task plus one per phase
    (twice the checkpointer CPU per model call on SQLite; bench/overhead.py).
    """
    phases: dict[str, Any] = {
        _STEP: func.task(name=_STEP)(_make_step(spec)),
        _TOOLS: func.task(name=_TOOLS)(_make_tools_node(spec)),
        _ESCALATE: func.task(name=_ESCALATE)(_make_escalate(spec)),
    }

    async def run(state: Mapping[str, Any]) -> dict[str, Any]:
        view: TaskView = dict(state)  # type: ignore[assignment]
        limit = int(get_config().get("recursion_limit") or 100)
        goto = _STEP
        for _ in range(limit):
            update = await phases[goto](view)  # the task gets the runtime from LangGraph
            if update.get("usage"):
                # A replayed phase made its requests before this process (or before the
                # interrupt): count them in the run's ledger (by record id, so once).
                await ledger_for(view).aabsorb(update["usage"])
            view = _merged(view, update)
            goto = _next(view)
            if goto == END:
                return {k: view[k] for k in _OUTPUT_KEYS if k in view}  # type: ignore[literal-required]
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
