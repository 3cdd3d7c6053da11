"""TEST DOUBLE: routing's scripted oracle, choosing the item's cheapest tier (or the next)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from tierflow.oracle import reply, right

__all__ = ["oracle"]

_LADDER = ["nano", "mini", "flagship"]


def oracle(
    items: list[dict[str, Any]], tier: str, accuracy: Mapping[str, float]
) -> Callable[[list[BaseMessage]], AIMessage]:
    """A responder for ``tier``: the reference tier, or the one above it when wrong."""
    by_task = {i["task"]: i for i in items}

    def respond(messages: list[BaseMessage]) -> AIMessage:
        task = str(messages[-1].content).split("Task: ", 1)[-1]
        item = by_task[task]
        choice = item["cheapest_tier"]
        if not right(item["id"], tier, accuracy):
            choice = _LADDER[(_LADDER.index(choice) + 1) % 3]
        return reply("TierChoice", {"tier": choice, "reason": "reference label (test double)"})

    return respond
