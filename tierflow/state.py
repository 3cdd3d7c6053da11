"""State keys every tierflow graph shares: run id, usage records, budget, timeline events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from typing_extensions import TypedDict

from tierflow.usage import merge_usage

__all__ = ["EngineState", "merge_dict", "cleared", "max_budget", "merge_events", "event"]


CLEAR = "__clear__"


def cleared() -> dict[str, Any]:
    """A write for a :func:`merge_dict` channel that empties it (a new run on a thread)."""
    return {CLEAR: True}


def merge_dict(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer: union of two dicts, right wins; :func:`cleared` starts from empty.

    Deterministic without sorting: LangGraph applies the writes of parallel tasks in task
    order, not in the order they finished.
    """
    if not right:
        return dict(left or {})
    if CLEAR in right:
        return {k: v for k, v in right.items() if k != CLEAR}
    return {**(left or {}), **right}


def max_budget(left: float | None, right: float | None) -> float | None:
    """Reducer: a budget only grows (a human raised it); None (no budget) stays None."""
    if left is None or right is None:
        return left if right is None else right
    return max(left, right)


# Reducer: append the new timeline events (each is written once, by the node it describes);
# the same append as usage records.
merge_events = merge_usage


class EngineState(TypedDict, total=False):
    """Keys the engine reads and writes in every graph (mix into a graph's own state)."""

    run_id: str
    usage: Annotated[list[dict[str, Any]], merge_usage]
    budget_usd: Annotated[float | None, max_budget]
    events: Annotated[list[dict[str, Any]], merge_events]


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A timeline event for the run view (escalations, reviews, budget decisions)."""
    # Plain strings only: LangGraph's serializer keeps Enum types, which strict loading rejects.
    clean = {k: v.value if isinstance(v, Enum) else v for k, v in fields.items()}
    return {"id": uuid.uuid4().hex, "kind": str(kind), "at": time.time(), **clean}
