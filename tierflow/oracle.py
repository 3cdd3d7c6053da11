"""TEST DOUBLE pieces a graph's scripted oracle is made of: the per-item coin, the replies.

A graph's :class:`~tierflow.graphspec.EvalSuite` names an ``oracle(items, tier, accuracy)``
that returns a responder (messages -> the reply a model of ``tier`` gives); it answers from
the dataset's reference, wrong on a deterministic share of items (:func:`right`). The models
that carry these responders are :mod:`tierflow.evals.scripted`'s.

Example:
    >>> right("t-001", "flagship", {"flagship": 1.0}), right("t-001", "nano", {"nano": 0.0})
    (True, False)
    >>> reply("finish", {"ok": True}).tool_calls[0]["name"]
    'finish'
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from tierflow.testing import tool_reply

__all__ = ["USAGE", "right", "reply", "finish", "task_of"]

USAGE = (1000, 100)  # input, output tokens reported for every request


def right(item_id: str, tier: str, accuracy: Mapping[str, float]) -> bool:
    """Whether ``tier`` answers item ``item_id`` right (a fixed coin per item and tier)."""
    # Deterministic coin per (item, tier): the same items are wrong on every run.
    return zlib.crc32(f"{item_id}|{tier}".encode()) % 1000 < accuracy.get(tier, 1.0) * 1000


def reply(name: str, args: dict[str, Any]) -> AIMessage:
    """A call of tool ``name`` with ``args``, reporting :data:`USAGE`."""
    return tool_reply(name, args, usage=USAGE)


def finish(messages: list[BaseMessage], output: dict[str, Any]) -> AIMessage:
    """A subagent's finishing reply, in forced mode when its prompt asks for ``next_action``."""
    system = str(messages[0].content)
    if "Tools: " in system and "'next_action'" in system:  # forced mode (local profile)
        return reply("next_action", {"step": {"action": "finish", "result": output}})
    return reply("finish", output)


def task_of(messages: list[BaseMessage]) -> tuple[str, dict[str, Any]]:
    """The subagent's task schema name and payload, from its opening message."""
    opening = next(str(m.content) for m in messages[1:] if str(m.content).startswith("Task ("))
    head, _, body = opening.partition(":\n")
    payload, _ = json.JSONDecoder().raw_decode(body)
    return head.removeprefix("Task (").rstrip(")"), payload
