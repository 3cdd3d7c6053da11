"""State keys every tierflow graph shares: usage records, budget, timeline events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from typing_extensions import TypedDict

from tierflow.usage import merge_usage

__all__ = ["EngineState", "merge_dict", "max_budget", "merge_events"]


def merge_dict(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer: union of two dicts, right wins; keys sorted so parallel merges are deterministic."""
    merged = {**(left or {}), **(right or {})}
    return {k: merged[k] for k in sorted(merged)}


def max_budget(left: float | None, right: float | None) -> float | None:
    """Reducer: a budget only grows (a human raised it); None (no budget) stays None."""
    if left is None or right is None:
        return left if right is None else right
    return max(left, right)


def merge_events(
    left: Sequence[Mapping[str, Any]] | None, right: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """Reducer: append timeline events not seen yet (by ``id``)."""
    out = [dict(e) for e in left or ()]
    seen = {e.get("id") for e in out}
    for event in right or ():
        if event.get("id") not in seen:
            seen.add(event.get("id"))
            out.append(dict(event))
    return out


class EngineState(TypedDict, total=False):
    """Keys the engine reads and writes in every graph (mix into a graph's own state)."""

    usage: Annotated[list[dict[str, Any]], merge_usage]
    budget_usd: Annotated[float | None, max_budget]
    events: Annotated[list[dict[str, Any]], merge_events]
