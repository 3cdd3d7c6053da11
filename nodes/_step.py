"""The ``step`` phase of a subagent task: one model request, and the action it returns applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel

from tierflow.calibration import subagent_calibration
from tierflow.calling import CallSite, call_model
from tierflow.errors import ModelCallError
from tierflow.nodes._phases import finished, off_loop
from tierflow.nodes._prompts import (
    answer_offer,
    fit_context,
    offers,
    opening,
    render_call,
    system_prompt,
)
from tierflow.nodes._spec import DETERMINISTIC, Subagent
from tierflow.nodes._task_state import Escalation, Outcome, PendingCall, TaskView, task_of
from tierflow.nodes.actions import FINISH, Finish, Invalid, ToolCall
from tierflow.nodes.human import event
from tierflow.nodes.verifier import CheckSite, as_check, verdict_event
from tierflow.protocol import EscalationReason, EventKind, TaskStatus
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.tiers import Site, SiteKind, start_tier

__all__ = ["make_step", "resample"]


def make_step(spec: Subagent, graph: str | None = None) -> Callable[..., Any]:
    """The ``step`` phase of ``spec``: a shortcut on the first step, else one model request.

    A task that has no tier yet starts on the one the calibration of ``graph`` chose for
    ``spec`` (:func:`~tierflow.calibration.subagent_calibration`), else on ``spec.tier``;
    a calibrated start is kept in the task's state, where the climbs start from.
    """
    offer_for = offers(spec)
    tier_site = Site(SiteKind.SUBAGENT, spec.tier)

    async def step(state: TaskView, runtime: Runtime[RunContext]) -> dict[str, Any]:
        first = not state.get("steps") and not state.get("transcript")
        if spec.shortcut is not None and first and context_of(runtime).shortcuts:
            done = await off_loop(True, _shortcut, spec, state)
            if done is not None:
                return finished(spec, state, done)
        engine = engine_for(runtime.context)
        policy = context_of(runtime).policy
        tier = state.get("tier")
        if tier is None:
            ctx = context_of(runtime)
            wanted = graph is not None or ctx.calibration is not None  # else there is no file
            sub = (await off_loop(True, subagent_calibration, graph, spec.name, ctx.calibration)
                   if wanted else None)  # fmt: skip
            tier = start_tier(tier_site, policy, engine.config, sub)
        forced = engine.config.tier(tier).tool_mode == "forced"
        # Each tier gets its own max_steps; steps keeps counting across tiers for reports.
        steps_here = state.get("steps", 0) - state.get("tier_start_step", 0)
        must_finish = steps_here >= spec.max_steps - 1
        env = state.get("env") or {}
        # Tools built for the run's env, and the prefetch, do file work.
        offer = await off_loop(callable(spec.tools), offer_for, env, forced, must_finish)
        if spec.answer_tools is not None:
            offer = answer_offer(spec, task_of(spec, state))
        transcript = list(state.get("transcript") or [])
        if not transcript:
            transcript = await off_loop(bool(spec.prefetch), opening, spec, state)
        system = SystemMessage(system_prompt(spec, offer.tools, forced, must_finish))
        sent = fit_context(transcript, spec.max_context_chars) if forced else transcript
        try:
            out = await call_model(
                engine,
                _call_site(spec, state, tier),
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
            failed = Escalation(reason=EscalationReason.ERROR.value, detail=str(exc))
            # The tier it failed on is where the climb starts (a calibrated start included).
            return {"usage": exc.records, "transcript": transcript, "escalation": failed,
                    "tier": tier}  # fmt: skip
        update: dict[str, Any] = {**out.state_update(), "transcript": transcript}
        if out.tier != state.get("tier"):
            update["tier"] = out.tier
        if out.stopped or out.message is None:
            status = TaskStatus(out.stopped or TaskStatus.STOPPED).value
            stopped = Outcome(status=status, error="; ".join(out.notes))
            return finished(spec, state, {**update, "outcome": stopped})
        action = offer.parse(out.message)
        hooked = isinstance(action, Finish) and bool(spec.normalize or spec.verifier)
        applied = await off_loop(
            hooked, _apply, spec, state, action, out.message, transcript, forced
        )
        return finished(spec, state, {**update, **applied})

    return step


def _call_site(spec: Subagent, state: TaskView, tier: str) -> CallSite:
    """Where a step's request is recorded: the subagent, its task, the last climb's reason."""
    history = state.get("escalations")
    return CallSite(
        node=spec.name,
        tier=tier,
        subagent=spec.name,
        task_id=state.get("task_id"),
        escalation_reason=history[-1].get("reason") if history else None,
    )


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
    offer = offers(spec)(env, forced, False)
    if spec.answer_tools is not None:
        offer = answer_offer(spec, spec.task_schema.model_validate(dict(task)))
    view: Any = {"task": dict(task), "env": env}
    messages = await off_loop(bool(spec.prefetch), opening, spec, view)
    system = SystemMessage(system_prompt(spec, offer.tools, forced, False))
    site = CallSite(node=node, tier=tier, subagent=spec.name, task_id=state.get("task_id"))
    try:
        out = await call_model(
            engine, site, state, [system, *messages], tools=offer.offered,
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
    """The update one parsed action makes: a repair, a finished output, or tool calls."""
    steps = state.get("steps", 0) + 1
    if isinstance(action, Invalid):
        return _apply_invalid(spec, state, action, msg, transcript, steps)
    if isinstance(action, Finish):
        return _apply_finish(spec, state, action, transcript, steps)
    return _apply_calls(state, action, transcript, steps, forced)


def _apply_invalid(
    spec: Subagent,
    state: TaskView,
    action: Invalid,
    msg: AIMessage,
    transcript: list[BaseMessage],
    steps: int,
) -> dict[str, Any]:
    """An invalid answer: shown back with the error, escalated after ``max_repairs``."""
    repairs = state.get("repairs", 0) + 1
    shown = AIMessage(str(msg.content) or json.dumps([c["args"] for c in msg.tool_calls])[:2000])
    fix = HumanMessage(f"That answer was invalid: {action.error}. Try again.")
    update: dict[str, Any] = {
        "steps": steps,
        "repairs": repairs,
        "transcript": [*transcript, shown, fix],
    }
    if repairs > spec.max_repairs:
        update["escalation"] = Escalation(
            reason=EscalationReason.SCHEMA_VALIDATION.value, detail=action.error
        )
    return update


def _apply_finish(
    spec: Subagent,
    state: TaskView,
    action: Finish,
    transcript: list[BaseMessage],
    steps: int,
) -> dict[str, Any]:
    """A finished output, normalized, then kept or sent back by the verifier."""
    env = state.get("env") or {}
    task = task_of(spec, state)
    output = spec.normalize(task, action.output, env) if spec.normalize else action.output
    done = Outcome(status=TaskStatus.DONE.value, output=output.model_dump())
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
        "escalation": Escalation(reason=EscalationReason.VERIFIER_REJECTED.value, detail=rejection),
        "events": notes,
    }


def _apply_calls(
    state: TaskView,
    calls: list[ToolCall],
    transcript: list[BaseMessage],
    steps: int,
    forced: bool,
) -> dict[str, Any]:
    """Tool calls, made pending; a repeated call is warned about once, then escalated."""
    seen = list(state.get("seen_calls") or [])
    repeats = [c for c in calls if c.key in seen]
    if repeats:
        if state.get("loop_warned"):
            looped = Escalation(reason=EscalationReason.LOOP_DETECTED.value, detail=repeats[0].key)
            return {"steps": steps, "escalation": looped}
        warn = HumanMessage(
            f"You already called {repeats[0].name} with these arguments; its result is above. "
            f"Do something different or use '{FINISH}'."
        )
        return {"steps": steps, "loop_warned": True, "transcript": [*transcript, warn]}
    rendered = [render_call(c, forced) for c in calls]
    pending = [PendingCall(name=c.name, args=c.args, id=c.id, forced=forced) for c in calls]
    return {
        "steps": steps,
        "seen_calls": seen + [c.key for c in calls],
        "pending": pending,
        "transcript": [*transcript, *rendered],
    }


def _shortcut(spec: Subagent, state: TaskView) -> dict[str, Any] | None:
    """The task's outcome from ``spec.shortcut`` when it holds up, else None (the model works)."""
    assert spec.shortcut is not None
    env, task = state.get("env") or {}, task_of(spec, state)
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
    done = Outcome(status=TaskStatus.DONE.value, output=output.model_dump(), tier=DETERMINISTIC)
    return {"outcome": done, "events": [note]}
