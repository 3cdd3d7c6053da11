"""Human-in-the-loop: one interrupt payload shape and strict parsing of the answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from tierflow.protocol import ReviewAction

__all__ = ["ReviewDecision", "ask_human", "REVIEW_OPTIONS", "event"]

REVIEW_OPTIONS = tuple(a.value for a in ReviewAction)


class ReviewDecision(BaseModel):
    """A human's answer to a review interrupt."""

    action: Literal["approve", "edit", "reject"]
    value: Any = None
    note: str | None = None


def _problem(
    answer: Any, kind: str, check: Callable[[ReviewDecision], str | None] | None
) -> tuple[ReviewDecision | None, str | None]:
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
    **details: Any,
) -> ReviewDecision:
    """Interrupt with a clear payload and return the validated decision.

    The run resumes with ``Command(resume={"action": "approve"})``, ``{"action": "edit",
    "value": ...}`` or ``{"action": "reject", "note": "why"}`` (a bare string such as
    ``"approve"`` is accepted too). An unusable answer (or one ``check`` rejects) is not
    raised: the same node asks again with the problem in ``error``, because LangGraph would
    replay a stored bad answer on every later resume and the thread could never finish.
    """
    payload = {
        "kind": str(kind),
        "question": question,
        "options": list(REVIEW_OPTIONS),
        "resume_with": {"action": "approve|edit|reject", "value": "(edit) the corrected value"},
        **details,
    }
    while True:
        decision, problem = _problem(interrupt(payload), kind, check)
        if decision is not None:
            return decision
        payload = {**payload, "error": problem, "question": f"{problem}\n{question}"}


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A timeline event for the run view (escalations, reviews, budget decisions)."""
    # Plain strings only: LangGraph's serializer keeps Enum types, which strict loading rejects.
    clean = {k: v.value if isinstance(v, Enum) else v for k, v in fields.items()}
    return {"id": uuid.uuid4().hex, "kind": str(kind), "at": time.time(), **clean}
