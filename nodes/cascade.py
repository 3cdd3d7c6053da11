r"""Routed, verified cascade over one subagent: route -> solve -> verify -> climb on rejection.

Graph shape (:func:`build_cascade`)::

    START -> route --Send--> <subagent> -> verify --(rejected, a tier left)--Send--> <subagent>
                                                  \--(accepted, top tier, or no cascade)--> END

``route`` picks the task's first tier from the run's policy (:func:`tierflow.tiers.start_tier`):
the declared tier (the calibration's ``start_tier`` when one is loaded), the policy's fixed tier,
a seeded coin (``random``), or the calibrated router (``router``). ``verify`` runs the
subagent's :class:`~tierflow.nodes.verifier.Verifier` when the policy escalates; a rejected
answer is sent again, whole, to the next tier of the calibration's ladder (else the profile's),
so the stronger tier answers the same request it would have answered on its own. A verifier
with ``repairs`` first sends a rejected answer back to the tier that gave it, with the reason
(``feedback``): the tier fixes its own answer, and only a fix that is rejected too climbs.

Input: ``{"task": {...}, "task_id": "q-17"}`` (the task as the subagent's ``task_schema``).
Output: ``answer`` (the accepted output, or None), ``tier``, ``status``, ``verified``,
``attempts`` (one ``{tier, ok, reason}`` per verified answer, with ``repair: true`` when the
answer was sent back to its tier), ``route`` and ``calibration``. Each verdict is also a
``verified`` event (:func:`~tierflow.nodes.verifier.verdict_event`), with what its samples cost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from typing_extensions import TypedDict

from tierflow import tiers
from tierflow.budget import begin_run, end_run
from tierflow.calibration import Calibration, SubagentCalibration, calibration_for
from tierflow.nodes.human import event
from tierflow.nodes.subagent import (
    SUBAGENT_NODE,
    Subagent,
    off_loop,
    resample,
    subagent_input,
    subagent_node,
)
from tierflow.nodes.verifier import CheckSite, Verdict, Verifier, verdict_event
from tierflow.protocol import EscalationReason, EventKind, Node, TaskStatus
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.state import EngineState, merge_dict, merge_events
from tierflow.tiers import Site, SiteKind, Start, start_tier

__all__ = [
    "Cascade", "CascadeState", "CascadeInput", "CascadeOutput", "build_cascade", "calibration_of",
]  # fmt: skip


def _shown(output: Mapping[str, Any]) -> str:
    """A rejected answer as its tier is shown it again: its one text field (code), else JSON."""
    values = list(output.values())
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return json.dumps(output, default=str)


@dataclass(frozen=True)
class Cascade:
    """Declaration of a routed, verified cascade.

    Attributes:
        name: the graph's name: its calibration file is ``.tierflow/calibration/<name>.json``.
        subagent: the subagent that solves each task (no tools: one request per answer).
        verifier: checks an answer before the cascade accepts it.
        route_text: ``task -> text`` the router reads (default: the task as JSON).
        show_answer: ``output -> text``: a rejected answer as its tier is shown it again for a
            repair (default: its one text field, else its JSON).
        repair_prompt: what the tier is asked after its rejected answer; ``{reason}`` is the
            verifier's reason.
    """

    name: str
    subagent: Subagent
    verifier: Verifier
    route_text: Callable[[Mapping[str, Any]], str] = lambda task: json.dumps(task)
    show_answer: Callable[[Mapping[str, Any]], str] = _shown
    repair_prompt: str = (
        "That answer was rejected: {reason}. Reply again with the whole answer, fixed, in the "
        "form the instructions ask for."
    )


class CascadeInput(TypedDict, total=False):
    """A task for the cascade, with an optional id (kept in reports) and budget."""

    task: dict[str, Any]
    task_id: str
    env: dict[str, Any]
    budget_usd: float | None


class CascadeOutput(EngineState, total=False):
    """What a cascade run returns (see the module docstring for what each key means)."""

    answer: dict[str, Any] | None
    tier: str | None
    status: str
    verified: bool
    attempts: Annotated[list[dict[str, Any]], merge_events]
    route: dict[str, Any]
    calibration: str | None


class CascadeState(CascadeOutput, total=False):
    """The cascade's channels: its input, output and working keys."""

    task: dict[str, Any]
    task_id: str
    env: dict[str, Any]
    results: Annotated[dict[str, Any], merge_dict]
    current: str
    feedback: list[dict[str, str]]  # the answers sent back to the current tier, and why


def calibration_of(
    spec: Cascade, ctx: RunContext
) -> tuple[Calibration | None, SubagentCalibration | None]:
    """The calibration a run of ``spec`` uses: ``ctx.calibration``, else the default file.

    A file named in the context must exist (ConfigError otherwise); the default file is
    optional.
    """
    cal = calibration_for(spec.name, ctx.calibration, suite=spec.name)
    return cal, cal.subagents.get(spec.subagent.name) if cal is not None else None


def _send(
    spec: Cascade,
    state: Mapping[str, Any],
    tier: str,
    history: list[Any],
    feedback: list[dict[str, str]] | None = None,
) -> Send:
    key = _key(state, tier, feedback)
    payload: dict[str, Any] = {**subagent_input(key, state.get("task") or {}, state), "tier": tier}
    if history:
        payload["escalations"] = history
    if feedback:
        payload["feedback"] = feedback
    return Send(spec.subagent.name, payload)


def _key(state: Mapping[str, Any], tier: str, feedback: list[Any] | None = None) -> str:
    """The results key of one attempt: ``q-17@nano``, then ``q-17@nano~1`` for its repair."""
    return f"{state['task_id']}@{tier}" + (f"~{len(feedback)}" if feedback else "")


def _route_node(spec: Cascade) -> Callable[..., Any]:
    async def route(state: CascadeState, runtime: Runtime[RunContext]) -> Command[Any]:
        ctx = context_of(runtime)
        config = engine_for(runtime.context).config
        fresh = begin_run(state, ctx.budget_usd)
        view: dict[str, Any] = {**state, **fresh}
        view.setdefault("task_id", uuid.uuid4().hex[:12])
        cal, sub = await off_loop(True, calibration_of, spec, ctx)
        picked, p_cheap = None, None
        if sub and sub.router and ctx.policy.start == Start.ROUTER:
            text = spec.route_text(view.get("task") or {})
            p_cheap = round(sub.router.p_cheap(text), 4)
            picked = sub.router.pick(text)
        site = Site(SiteKind.CASCADE, spec.subagent.tier, key=view["task_id"], routed=picked)
        tier = start_tier(site, ctx.policy, config, sub)
        route = {"tier": tier, "policy": ctx.policy.name, "start": ctx.policy.start,
                 "p_cheap": p_cheap, "calibration": cal.label() if cal else None}  # fmt: skip
        update = {**fresh, "task_id": view["task_id"], "route": route,
                  "calibration": route["calibration"], "current": _key(view, tier),
                  "events": [event(EventKind.ROUTED, subagent=spec.subagent.name, **route)]}  # fmt: skip
        return Command(goto=_send(spec, view, tier, []), update=update)

    route.__name__ = Node.ROUTE.value
    return route


async def _verdict(
    spec: Cascade,
    state: CascadeState,
    runtime: Runtime[RunContext],
    tier: str,
    output: Mapping[str, Any] | None,
    verifier: Verifier,
) -> tuple[Verdict, list[dict[str, Any]]]:
    task = state.get("task") or {}
    env = state.get("env") or {}
    settled = await off_loop(verifier.check is not None, verifier.settle, task, output, env)
    if settled is not None or output is None:
        return settled or Verdict.reject("no valid answer"), []
    usage: list[dict[str, Any]] = []
    samples: list[Mapping[str, Any] | None] = []
    for k in range(1, verifier.samples):
        params = {"temperature": verifier.temperature, "seed": k}
        out, records = await resample(spec.subagent, task, tier, state, runtime,
                                      node=Node.VERIFY.value, params=params)  # fmt: skip
        usage.extend(records)
        samples.append(out.model_dump() if out is not None else None)
    return verifier.agree(output, samples), usage


def _verifier_of(spec: Cascade, sub: SubagentCalibration | None) -> Verifier:
    """The declared verifier with the calibration's settings (repairs; agreement's samples)."""
    if sub is None or sub.verifier is None:
        return spec.verifier
    verifier = spec.verifier
    if sub.verifier.repairs is not None:
        verifier = replace(verifier, repairs=sub.verifier.repairs)
    if spec.verifier.kind != "agreement":
        return verifier
    return replace(verifier, samples=sub.verifier.samples, temperature=sub.verifier.temperature)


def _verify_node(spec: Cascade) -> Callable[..., Any]:
    async def verify(state: CascadeState, runtime: Runtime[RunContext]) -> Command[Any]:
        ctx = context_of(runtime)
        config = engine_for(runtime.context).config
        result = (state.get("results") or {})[state["current"]]
        tier, status = result["tier"], result["status"]
        output = result.get("output") if status == TaskStatus.DONE else None
        _, sub = await off_loop(True, calibration_of, spec, ctx)
        upper = tiers.climb(tier, ctx.policy, config, sub)  # the calibration's ladder, if any
        stopped = status in (TaskStatus.STOPPED, TaskStatus.BUDGET_EXHAUSTED)
        if upper is None or stopped:  # nothing to climb to: the answer stands as it is
            return _finish(state, output, tier, status, verified=False, update={})
        verifier = _verifier_of(spec, sub)
        verdict, usage = await _verdict(spec, state, runtime, tier, output, verifier)
        sent_back = list(state.get("feedback") or [])
        repair = not verdict.ok and verdict.repairable and output is not None
        repair = repair and len(sent_back) < verifier.repairs
        site: dict[str, Any] = {"tier": tier, "repair": True} if repair else {"tier": tier}
        attempt: dict[str, Any] = {**site, "ok": verdict.ok, "reason": verdict.reason}
        cost = sum(float(r.get("cost_usd") or 0.0) for r in usage)
        note = verdict_event(CheckSite.CASCADE, verdict, cost_usd=cost, requests=len(usage),
                             subagent=spec.subagent.name, **site)  # fmt: skip
        update: dict[str, Any] = {"usage": usage, "attempts": [attempt], "events": [note]}
        if verdict.ok:
            return _finish(state, output, tier, status, verified=True, update=update)
        if repair:  # back to the same tier, shown its answer and why it was rejected
            assert output is not None
            reason = verdict.reason or "the verifier rejected it"
            ask = spec.repair_prompt.format(reason=reason)
            sent_back.append({"answer": spec.show_answer(output), "reason": reason, "ask": ask})
            update |= {"feedback": sent_back, "current": _key(state, tier, sent_back)}
            history = list(result.get("escalations") or [])
            return Command(goto=_send(spec, state, tier, history, sent_back), update=update)
        step = {"from": tier, "to": upper, "reason": EscalationReason.VERIFIER_REJECTED.value,
                "detail": verdict.reason or ""}  # fmt: skip
        history = [*(result.get("escalations") or []), step]
        climb = event(EventKind.ESCALATION, subagent=spec.subagent.name, **step)
        update["events"].append(climb)
        update |= {"current": _key(state, upper), "feedback": []}
        return Command(goto=_send(spec, state, upper, history), update=update)

    verify.__name__ = Node.VERIFY.value
    return verify


def _finish(
    state: CascadeState,
    output: Mapping[str, Any] | None,
    tier: str,
    status: str,
    *,
    verified: bool,
    update: dict[str, Any],
) -> Command[Any]:
    end_run(state)
    final = {"answer": dict(output) if output is not None else None, "tier": tier,
             "status": status, "verified": verified}  # fmt: skip
    return Command(goto=END, update={**update, **final})


def build_cascade(
    spec: Cascade,
) -> StateGraph[CascadeState, RunContext, CascadeInput, CascadeOutput]:
    """Uncompiled cascade graph of ``spec`` (choose the checkpointer at ``compile()``).

    Example:
        >>> from pydantic import BaseModel
        >>> class Q(BaseModel):
        ...     question: str
        >>> class A(BaseModel):
        ...     answer: str
        >>> sub = Subagent(name="solve", description="answer", tier="nano", task_schema=Q,
        ...                output_schema=A, prompt="Answer.")
        >>> g = build_cascade(Cascade("demo", sub, Verifier("format"))).compile()
        >>> sorted(n for n in g.get_graph().nodes if not n.startswith("__"))
        ['route', 'solve', 'verify']
    """
    name = spec.subagent.name
    builder = StateGraph(
        CascadeState,
        input_schema=CascadeInput,
        output_schema=CascadeOutput,
        context_schema=RunContext,
    )
    builder.add_node(Node.ROUTE.value, _route_node(spec), destinations=(name,))
    builder.add_node(name, subagent_node(spec.subagent), metadata=SUBAGENT_NODE)
    builder.add_node(Node.VERIFY.value, _verify_node(spec), destinations=(name, END))
    builder.add_edge(START, Node.ROUTE.value)
    builder.add_edge(name, Node.VERIFY.value)
    return builder
