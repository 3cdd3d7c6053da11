"""The supervisor's final answer: evidence, the answer call, its check, a repair, human review."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import BaseModel, ValidationError

from tierflow.budget import end_run
from tierflow.errors import InputError
from tierflow.nodes._part_drafts import draft_parts
from tierflow.nodes._supervisor_call import planner_call, results_digest
from tierflow.nodes._supervisor_state import (
    AnswerCheck,
    ReviewOutcome,
    SupervisorState,
    after,
    changes,
)
from tierflow.nodes.human import ReviewDecision, ask_human, event
from tierflow.nodes.subagent import off_loop
from tierflow.nodes.verifier import CheckSite, Verdict, as_check, verdict_event
from tierflow.protocol import (
    EscalationReason,
    EventKind,
    InterruptKind,
    Node,
    ReviewAction,
    RunStatus,
    ToolName,
)
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.tiers import Site, SiteKind, start_tier

if TYPE_CHECKING:
    from tierflow.nodes.supervisor import Supervisor

__all__ = ["ANSWER", "make_answer", "make_review"]

ANSWER = ToolName.ANSWER.value


def make_answer(spec: Supervisor) -> Callable[..., Any]:
    """The answer node: one answer call on the results, checked, repaired once, maybe reviewed."""
    answer_tool = _answer_tool(spec)  # built once per spec, not per call
    answer_site = Site(SiteKind.ANSWER, spec.tier)
    draft_site = Site(SiteKind.DRAFT, spec.answer_tier) if spec.answer_tier else None

    def tier_of(attempt: int, runtime: Runtime[RunContext]) -> tuple[str, bool]:
        """The tier of answer try ``attempt`` (0 first), and whether it climbed from a draft."""
        policy, config = context_of(runtime).policy, engine_for(runtime.context).config
        top = start_tier(answer_site, policy, config)
        if draft_site is None:
            return top, False
        draft = start_tier(draft_site, policy, config)
        if attempt == 0 or draft == top or not policy.escalate:
            return draft, False
        return top, True

    async def answer(state: SupervisorState, runtime: Runtime[RunContext]) -> Command[str]:
        update = await _answer(state, runtime)
        return Command(update=changes(state, update), goto=_after_answer(after(state, update)))

    async def _answer(state: SupervisorState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        problems = state.get("answer_problems") or []
        tier, climbed = tier_of(len(problems), runtime)
        # A draft part by part first, when declared and the request splits into parts; a
        # rejected one is drafted part by part again on the supervisor's tier (when the draft
        # was below it), and the repairs after that are whole answers.
        parted = await off_loop(True, _part_prompts, spec, state) if draft_site else []
        # a draft below the top gets one more repair, and part drafts one more again
        repairs = 1 + int(tier_of(1, runtime)[1]) + int(bool(parted))
        # whether a rejection of this try sends the next one up a tier (a draft's does)
        climbs = tier_of(len(problems) + 1, runtime)[0] != tier
        if parted and (not problems or len(problems) == 1 and climbed):
            return await _drafted(spec, state, runtime, tier, parted, repairs, climbs, climbed)
        user = f"Request:\n{state.get('request', '')}\n\nResults:\n{results_digest(state.get('results') or {})}"
        if spec.answer_evidence:
            user += f"\n\n{await off_loop(True, spec.answer_evidence, state)}"
        if problems:
            user += f"\n\nYour previous answer had problems: {problems[-1]}. Fix them."
        messages = [SystemMessage(spec.answer_prompt.strip()), HumanMessage(user)]
        reason = EscalationReason.VERIFIER_REJECTED.value if climbed else None
        out = await planner_call(
            runtime, Node.ANSWER.value, tier, state, messages, answer_tool, ANSWER, reason
        )
        if isinstance(out, dict):
            return {**out, "answer_retry": False}
        return {
            **out.state_update(),
            **await _checked(spec, state, runtime, _args(out.message), repairs, climbs, tier),
        }

    return answer


async def _drafted(
    spec: Supervisor,
    state: SupervisorState,
    runtime: Runtime[RunContext],
    tier: str,
    prompts: list[str],
    repairs: int,
    climbs: bool,
    climbed: bool,
) -> dict[str, Any]:
    """One answer try drafted part by part on ``tier``: the parts, composed, then checked."""
    assert spec.part_drafts is not None
    reason = EscalationReason.VERIFIER_REJECTED.value if climbed else None
    update, texts = await draft_parts(
        runtime, Node.ANSWER.value, tier, state, prompts, spec.part_drafts, reason
    )
    if update.get("status"):  # the budget stopped a part: end as a stopped answer call
        return {**update, "answer_retry": False}
    if texts is None:  # a part's call failed: a repair is asked, on the next tier up
        problems = state.get("answer_problems") or []
        why = "a part's draft call failed; write the whole answer"
        retry = len(problems) < repairs
        failed = {} if retry else {"status": RunStatus.FAILED.value}
        return {**update, **failed, "answer_problems": [*problems, why], "answer_retry": retry}
    composed = await off_loop(True, spec.part_drafts.compose, state, texts)
    return {
        **update,
        **await _checked(spec, state, runtime, composed.model_dump(), repairs, climbs, tier),
    }


async def _checked(
    spec: Supervisor,
    state: SupervisorState,
    runtime: Runtime[RunContext],
    args: Mapping[str, Any] | None,
    repairs: int,
    climbs: bool,
    tier: str,
) -> dict[str, Any]:
    """The answer ``args`` normalized and checked: a repair to ask for, or the run's answer.

    ``repairs``: how many repairs the run may ask for; ``climbs``: whether the next try is on
    a higher tier (see :func:`_check_answer`).
    """
    problems = state.get("answer_problems") or []
    hooked = bool(spec.answer_normalize or spec.answer_verifier)
    checked: AnswerCheck = await off_loop(
        hooked, _check_answer, spec, state, args, problems, repairs, climbs, tier
    )
    attended = context_of(runtime).policy.human
    review = attended and _reviewed(spec, checked)
    return {"answer_retry": False, "answer_review": review, **checked}


def _args(msg: Any) -> dict[str, Any] | None:
    """The arguments of the answer call ``msg`` made (None: it made none)."""
    return msg.tool_calls[0]["args"] if msg.tool_calls else None


def _part_prompts(spec: Supervisor, state: SupervisorState) -> list[str]:
    """The part drafts' prompts for ``state`` ([] when none are declared or it has no parts)."""
    return list(spec.part_drafts.parts(state)) if spec.part_drafts else []


def _reviewed(spec: Supervisor, checked: AnswerCheck) -> bool:
    """Whether a human reviews this answer in an attended run (``spec.review``)."""
    status = checked.get("status")
    return checked.get("answer") is not None and (
        (spec.review == "always" and status == RunStatus.ANSWERED)
        or (spec.review != "never" and status == RunStatus.UNVERIFIED)
    )


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
    spec: Supervisor,
    state: SupervisorState,
    args: Mapping[str, Any] | None,
    problems: list[str],
    repairs: int = 1,
    climbs: bool = False,
    tier: str | None = None,
) -> AnswerCheck:
    """Parse, normalize and check the answer; a rejection asks for a repair, ``repairs`` times.

    A rejection no repair can address (``Verdict.repairable`` False: only a person can judge
    it) ends the repairs, unless the next try climbs a tier: the stronger tier's answer is
    the one that stands, unverified.

    The ``verified`` event carries the answer as checked (after ``answer_normalize``), what the
    model wrote when that differs, and the tier that wrote it, so a rejected draft can be read
    in the timeline and in traces.
    """
    try:
        if args is None:
            raise InputError("no final_answer call was made")
        parsed = spec.answer_schema.model_validate(args)
        if spec.answer_normalize:
            parsed = spec.answer_normalize(parsed, state)
        verdict = _answer_check(spec, parsed, state)
        reason = None if verdict.ok else verdict.reason or "the answer's check rejected it"
    except (ValidationError, ValueError) as exc:
        parsed, reason, verdict = None, str(exc)[:500], None
    checked: dict[str, Any] = {"tier": tier}
    if parsed is not None:
        checked["answer"] = parsed.model_dump()
        written = dict(args or {})
        if written != checked["answer"]:  # what the model wrote, before answer_normalize
            checked["written"] = written
    notes = (
        [verdict_event(CheckSite.ANSWER, verdict, **checked)]
        if spec.answer_verifier and verdict
        else []
    )
    repairable = verdict is None or verdict.repairable or climbs
    if reason and len(problems) < repairs and repairable and not _stuck(state, checked, reason):
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


def _stuck(state: Mapping[str, Any], checked: Mapping[str, Any], reason: str) -> bool:
    """Whether this try repeats the one before it: same tier, same answer, same rejection.

    Such a repair is a loop: one more try on that tier is money spent on the same answer,
    so the repairs end (the answer is unverified) instead.
    """
    tries = [
        e for e in state.get("events") or []
        if e.get("kind") == EventKind.VERIFIED and e.get("check") == CheckSite.ANSWER
    ]  # fmt: skip
    if not tries:
        return False
    last = tries[-1]
    now = (checked.get("tier"), checked.get("answer"), reason)
    return (last.get("tier"), last.get("answer"), last.get("reason")) == now


def _answer_check(spec: Supervisor, answer: BaseModel, state: Mapping[str, Any]) -> Verdict:
    """``spec.answer_verifier`` under the one check contract (accepted when there is none)."""
    if spec.answer_verifier is None:
        return Verdict.accept()
    declared = spec.answer_verifier
    check = as_check(lambda _request, answer, state: declared(answer, state))
    return check(str(state.get("request", "")), answer, state)


def make_review(spec: Supervisor) -> Callable[..., Any]:
    """The review node: a human approves, edits or rejects the answer under review."""

    async def review(state: SupervisorState) -> Command[str]:
        update = _review(spec, state)
        return Command(update=update, goto=_after_answer(after(state, update)))

    return review


def _review(spec: Supervisor, state: SupervisorState) -> ReviewOutcome:
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
    update: ReviewOutcome = {"answer_review": False, "events": [note]}
    if decision.action == ReviewAction.APPROVE:
        update["status"] = RunStatus.ANSWERED.value
    elif decision.action == ReviewAction.EDIT:
        edited = spec.answer_schema.model_validate(decision.value).model_dump()
        update |= {"answer": edited, "status": RunStatus.ANSWERED.value}
    elif not unverified:  # an approval refused: the answer is not the run's answer
        update["status"] = RunStatus.REJECTED.value
    return update


def _after_answer(state: Mapping[str, Any]) -> str:
    if state.get("answer_retry"):
        return Node.ANSWER.value
    if state.get("answer_review"):
        return Node.REVIEW.value
    end_run(state)
    return END
