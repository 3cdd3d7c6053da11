"""Scripted replies for the scripted model: tool calls, text, supervisor and subagent turns."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import AIMessage

from tierflow.protocol import ToolName

__all__ = [
    "Usage",
    "tool_reply",
    "text_reply",
    "delegate",
    "answer_now",
    "result",
    "final_answer",
]


def tool_reply(
    name: str, args: dict[str, Any], *, usage: tuple[int, int] | tuple[int, int, int] | None = None
) -> AIMessage:
    """A reply that calls tool ``name``; ``usage`` is (input, output[, cached]) tokens."""
    msg = AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:8]}"}]
    )
    return _with_usage(msg, usage)


Usage = tuple[int, int] | tuple[int, int, int] | None


def delegate(*tasks: tuple[str, Any], plan: str = "delegate", usage: Usage = None) -> AIMessage:
    """A supervisor turn that delegates ``(subagent name, task)`` pairs (tasks: dict or model).

    With :func:`answer_now`, :func:`result` and :func:`final_answer`, a supervisor graph is
    scripted by what it decides and what its subagents return, not by tierflow's tool names:

    Example:
        >>> from tierflow.testing import ScriptedChatModel, delegate, answer_now, final_answer
        >>> flagship = ScriptedChatModel(label="flagship", script=[
        ...     delegate(("check", {"text": "claim"})), answer_now(), final_answer({"summary": "ok"})])
    """
    chosen = [{"subagent": name, "task": _plain(task)} for name, task in tasks]
    return tool_reply(
        ToolName.DECIDE.value, {"plan": plan, "delegate": chosen, "done": False}, usage=usage
    )


def answer_now(plan: str = "enough to answer", usage: Usage = None) -> AIMessage:
    """A supervisor turn that delegates nothing more: the final answer comes next."""
    return tool_reply(
        ToolName.DECIDE.value, {"plan": plan, "delegate": [], "done": True}, usage=usage
    )


def result(output: Any, *, forced: bool = False, usage: Usage = None) -> AIMessage:
    """A subagent step that finishes its task with ``output`` (forced: a local tier's form)."""
    if forced:
        step = {"step": {"action": ToolName.FINISH.value, "result": _plain(output)}}
        return tool_reply(ToolName.NEXT_ACTION.value, step, usage=usage)
    return tool_reply(ToolName.FINISH.value, _plain(output), usage=usage)


def final_answer(answer: Any, usage: Usage = None) -> AIMessage:
    """The supervisor's final answer (a dict or an instance of its answer schema)."""
    return tool_reply(ToolName.ANSWER.value, _plain(answer), usage=usage)


def _plain(value: Any) -> dict[str, Any]:
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def text_reply(
    text: str, *, usage: tuple[int, int] | tuple[int, int, int] | None = None
) -> AIMessage:
    """A plain text reply."""
    return _with_usage(AIMessage(content=text), usage)


def _with_usage(msg: AIMessage, usage: tuple[int, ...] | None) -> AIMessage:
    if usage is None:
        return msg
    inp, out, *rest = usage
    cached = rest[0] if rest else 0
    msg.usage_metadata = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {"cache_read": cached},
    }
    return msg
