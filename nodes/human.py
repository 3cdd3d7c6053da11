"""Human-in-the-loop: one interrupt payload shape and strict parsing of the answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

__all__ = ["ReviewDecision", "ask_human", "REVIEW_OPTIONS", "event"]

REVIEW_OPTIONS = ("approve", "edit", "reject")


class ReviewDecision(BaseModel):
    """A human's answer to a review interrupt."""

    action: Literal["approve", "edit", "reject"]
    value: Any = None
    note: str | None = None


def ask_human(kind: str, question: str, **details: Any) -> ReviewDecision:
    """Interrupt with a clear payload and return the validated decision.

    The run resumes with ``Command(resume={"action": "approve"})``, ``{"action": "edit",
    "value": ...}`` or ``{"action": "reject", "note": "why"}`` (a bare string such as
    ``"approve"`` is accepted too).

    Raises:
        ValueError: the resume value is not one of the options; the interrupt stays pending,
            so resuming again with a correct value continues the run.
    """
    payload = {
        "kind": kind,
        "question": question,
        "options": list(REVIEW_OPTIONS),
        "resume_with": {"action": "approve|edit|reject", "value": "(edit) the corrected value"},
        **details,
    }
    answer = interrupt(payload)
    if isinstance(answer, str):
        answer = {"action": answer}
    try:
        decision = ReviewDecision.model_validate(answer)
    except ValidationError as exc:
        raise ValueError(
            f"{kind} interrupt resumed with {answer!r}; resume with one of "
            f"{[{'action': o} for o in REVIEW_OPTIONS]} (edit also needs 'value')"
        ) from exc
    if decision.action == "edit" and decision.value is None:
        raise ValueError(f"{kind}: an 'edit' decision needs a 'value' with the corrected content")
    return decision


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A timeline event for the run view (escalations, reviews, budget decisions)."""
    return {"id": uuid.uuid4().hex, "kind": kind, "at": time.time(), **fields}


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A decision value that must be a JSON object."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}: {value!r}")
    return value
