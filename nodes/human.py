"""Human-in-the-loop: one interrupt payload shape and strict parsing of the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from tierflow.protocol import ReviewAction

# The timeline event's one shape lives in the engine; the node kinds import it from here.
from tierflow.state import event

__all__ = ["ReviewDecision", "ask_human", "REVIEW_OPTIONS", "event"]

REVIEW_OPTIONS = tuple(a.value for a in ReviewAction)


class ReviewDecision(BaseModel):
    """A human's answer to a review interrupt."""

    action: Literal["approve", "edit", "reject"]
    value: Any = None
    note: str | None = None


def _from_hitl(answer: Any) -> Any:
    """LangChain HumanInTheLoopMiddleware's response (``{"decisions": [...]}``) as ours."""
    if not (isinstance(answer, dict) and isinstance(answer.get("decisions"), list)):
        return answer
    if len(answer["decisions"]) != 1 or not isinstance(answer["decisions"][0], dict):
        return answer  # refused below with the accepted shapes
    d = answer["decisions"][0]
    kind = d.get("type")
    if kind == "edit":
        return {"action": "edit", "value": (d.get("edited_action") or {}).get("args")}
    if kind == "reject":
        return {"action": "reject", "note": d.get("message")}
    return {"action": kind}


def _problem(
    answer: Any, kind: str, check: Callable[[ReviewDecision], str | None] | None
) -> tuple[ReviewDecision | None, str | None]:
    answer = _from_hitl(answer)
    if isinstance(answer, str):
        answer = {"action": answer}
    try:
        decision = ReviewDecision.model_validate(answer)
    except ValidationError:
        return None, (
            f"{kind} was answered with {answer!r}; answer with one of "
            f"{[{'action': o} for o in REVIEW_OPTIONS]} (edit also needs 'value')"
        )
    if decision.action == "edit" and decision.value is None:
        return None, f"{kind}: an 'edit' answer needs a 'value' with the corrected content"
    problem = check(decision) if check else None
    return (None, problem) if problem else (decision, None)


def ask_human(
    kind: str,
    question: str,
    *,
    check: Callable[[ReviewDecision], str | None] | None = None,
    subject: tuple[str, Any] | None = None,
    **details: Any,
) -> ReviewDecision:
    """Interrupt with a clear payload and return the validated decision.

    The run resumes with ``Command(resume={"action": "approve"})``, ``{"action": "edit",
    "value": ...}`` or ``{"action": "reject", "note": "why"}`` (a bare string such as
    ``"approve"`` is accepted too). An unusable answer (or one ``check`` rejects) is not
    raised: the same node asks again with the problem in ``error``, because LangGraph would
    replay a stored bad answer on every later resume and the thread could never finish.

    With ``subject`` (a name and the value under review) the payload also carries the request
    shape of LangChain's ``HumanInTheLoopMiddleware`` (``action_requests``, ``review_configs``),
    which Agent Chat UI renders, and its response (``{"decisions": [{"type": "approve"}]}``,
    ``edit`` with ``edited_action.args``, ``reject`` with ``message``) is accepted too.
    """
    payload = {
        "kind": str(kind),
        "question": question,
        "options": list(REVIEW_OPTIONS),
        "resume_with": {"action": "approve|edit|reject", "value": "(edit) the corrected value"},
        **details,
    }
    if subject is not None:
        name, value = subject
        payload["action_requests"] = [
            {"name": name, "args": value if isinstance(value, dict) else {"value": value},
             "description": question}
        ]  # fmt: skip
        payload["review_configs"] = [
            {"action_name": name, "allowed_decisions": list(REVIEW_OPTIONS)}
        ]
    while True:
        decision, problem = _problem(interrupt(payload), kind, check)
        if decision is not None:
            return decision
        payload = {**payload, "error": problem, "question": f"{problem}\n{question}"}
