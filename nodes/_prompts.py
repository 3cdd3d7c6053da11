"""What a subagent's model is shown: the system prompt, the opening, and each step's offer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ValidationError

from tierflow.calling import tool_dicts
from tierflow.nodes._spec import ContextPolicy, Subagent
from tierflow.nodes._task_state import TaskView, task_of
from tierflow.nodes.actions import (
    FINISH,
    NEXT_ACTION,
    Finish,
    Invalid,
    ToolCall,
    finish_tool_schema,
    forced_action_schema,
    parse_forced,
    parse_native,
)

__all__ = [
    "Offer", "system_prompt", "opening", "fit_context", "render_call", "answer_offer", "offers",
]  # fmt: skip


def system_prompt(spec: Subagent, tools: list[BaseTool], forced: bool, must_finish: bool) -> str:
    """The system prompt of one step: the spec's prompt, its tools and how to answer."""
    if (spec.read_reply is not None or spec.answer_tools is not None) and not tools:
        return spec.prompt.strip()  # a plain-text answer or native calls, as the prompt asks
    lines = [spec.prompt.strip()]
    if tools:
        lines.append(
            "Tools: " + "; ".join(f"{t.name}: {t.description.splitlines()[0]}" for t in tools)
        )
    how = f"call '{NEXT_ACTION}' with one action" if forced and tools else "call one tool"
    if not tools:
        how = f"call '{FINISH}' with the result"
    lines.append(f"Work step by step: each turn, {how}. When you have the answer, use '{FINISH}'.")
    if must_finish:
        lines.append(f"You are out of steps: use '{FINISH}' now with the best result you have.")
    return "\n".join(lines)


def opening(spec: Subagent, state: TaskView) -> list[BaseMessage]:
    """The first messages of a task: the task, its context and prefetch, answers sent back."""
    if spec.render_task is not None:
        parts = [spec.render_task(task_of(spec, state))]
    else:
        parts = [f"Task ({spec.task_schema.__name__}):\n{json.dumps(state.get('task'))}"]
    if spec.context != ContextPolicy.TASK and state.get("context"):
        parts.append("Context:\n" + json.dumps(state["context"], default=str))
    if spec.prefetch is not None:
        env = state.get("env") or {}
        try:
            parts.append(spec.prefetch(task_of(spec, state), env))
        except (ToolException, OSError, ValueError) as exc:  # a bad query: no head start
            parts.append(f"(prefetch found nothing: {exc})")
    messages: list[BaseMessage] = [HumanMessage("\n\n".join(parts))]
    for sent_back in state.get("feedback") or []:
        messages += [AIMessage(sent_back["answer"]), HumanMessage(sent_back["ask"])]
    return messages


def fit_context(transcript: list[BaseMessage], max_chars: int) -> list[BaseMessage]:
    """The opening message plus as many recent messages as fit in ``max_chars``."""
    if sum(len(str(m.content)) for m in transcript) <= max_chars or len(transcript) < 3:
        return transcript
    head, size = transcript[0], len(str(transcript[0].content))
    kept: list[BaseMessage] = []
    for msg in reversed(transcript[1:]):
        size += len(str(msg.content))
        if size > max_chars and kept:
            break
        kept.append(msg)
    dropped = len(transcript) - 1 - len(kept)
    note = HumanMessage(f"({dropped} earlier steps left out to fit the context window.)")
    return [head, note, *reversed(kept)]


def render_call(call: ToolCall, forced: bool) -> AIMessage:
    """A tool call as the transcript keeps it: a text action in forced mode, else native."""
    if forced:
        return AIMessage(f"Action: {call.name}({json.dumps(call.args)})")
    return AIMessage("", tool_calls=[{"name": call.name, "args": call.args, "id": call.id}])


class Offer(NamedTuple):
    """What one step offers the model: tools, schemas and the parser of its answer."""

    tools: list[BaseTool]
    offered: list[Any]
    choice: str
    parse: Callable[[AIMessage], Any]


def _read_text(spec: Subagent, msg: AIMessage) -> Any:
    """A plain-text reply as a ``finish`` of the output ``read_reply`` makes of it."""
    assert spec.read_reply is not None
    text = msg.content if isinstance(msg.content, str) else str(msg.content)
    try:
        output = spec.read_reply(text)
    except (ValidationError, ValueError) as exc:
        return Invalid(f"the reply could not be read as {spec.output_schema.__name__}: {exc}")
    if output is None:
        return Invalid(f"no {spec.output_schema.__name__} could be read from the reply; answer "
                       "in the form the instructions give")  # fmt: skip
    return Finish(output)


def answer_offer(spec: Subagent, task: BaseModel) -> Offer:
    """The task's own functions, offered natively; the calls made are the output."""
    assert spec.answer_tools is not None

    def parse(msg: AIMessage) -> Any:
        calls = [{"name": c["name"], "arguments": dict(c["args"])} for c in msg.tool_calls]
        try:
            return Finish(spec.output_schema.model_validate({"calls": calls}))
        except ValidationError as exc:
            return Invalid(f"the calls do not fit {spec.output_schema.__name__}: {exc}")

    return Offer([], tool_dicts(spec.answer_tools(task)), "auto", parse)


def offers(spec: Subagent) -> Callable[[Mapping[str, Any], bool, bool], Offer]:
    """Per spec: tools and schemas built once per (env, mode), not on every call."""
    cache: dict[tuple[str, bool, bool], Offer] = {}
    finish = [finish_tool_schema(spec.output_schema)]

    def offer(env: Mapping[str, Any], forced: bool, must_finish: bool) -> Offer:
        # Only tools built from the env depend on it (and serialising it costs a call).
        scope = json.dumps(env, sort_keys=True, default=str) if callable(spec.tools) else ""
        key = (scope, forced, must_finish)
        hit = cache.get(key)
        if hit is not None:
            return hit
        tools = [] if must_finish else spec.tools_for(env)
        native = lambda m: parse_native(m, spec.output_schema)  # noqa: E731
        if not tools and spec.read_reply is not None:
            hit = Offer(tools, [], "", lambda m: _read_text(spec, m))
        elif not tools:
            hit = Offer(tools, tool_dicts(finish), FINISH, native)
        elif forced:
            action_schema = forced_action_schema(tools, spec.output_schema)
            hit = Offer(
                tools, tool_dicts([action_schema]), NEXT_ACTION,
                lambda m: parse_forced(m, action_schema),
            )  # fmt: skip
        else:
            hit = Offer(tools, tool_dicts([*tools, *finish]), "any", native)
        if len(cache) > 64:
            cache.clear()
        cache[key] = hit
        return hit

    return offer
