"""Routing's eval suite: a task to route, scored against the cheapest tier that solves it.

Example:
    >>> routing_correct("Mini", "mini")
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierflow.graphspec import Scored
from tierflow.scoring import normalize

__all__ = ["make_input", "score", "routing_correct"]


def make_input(item: Mapping[str, Any]) -> dict[str, Any]:
    """The routing question of a dataset item: the task and the subagent it is for."""
    return {"task": item["task"], "subagent": item["subagent"]}


def routing_correct(predicted: Any, reference: str) -> float:
    """1.0 when the predicted tier is the dataset's ``cheapest_tier``."""
    return float(predicted is not None and normalize(predicted) == normalize(reference))


def score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    """1.0 when the graph chose the item's cheapest tier."""
    ok = routing_correct(state.get("choice"), item["cheapest_tier"])
    return Scored({"tier": ok}, ok, {"route": ok}, state.get("choice"))
