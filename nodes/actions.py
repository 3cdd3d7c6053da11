"""Step actions of a subagent: native tool calls, or one schema-forced action for small models.

In ``forced`` mode every step is one call with ``tool_choice`` pinned to a single tool,
``next_action``, whose arguments are a union: call tool X with its arguments, or finish with
the result. Servers that constrain output with a grammar (llama.cpp) can then not produce
anything but a valid action shape; the arguments are validated again here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, ValidationError, create_model

from tierflow.protocol import ToolName

__all__ = [
    "FINISH",
    "NEXT_ACTION",
    "ToolCall",
    "Finish",
    "Invalid",
    "finish_tool_schema",
    "forced_action_schema",
    "parse_native",
    "parse_forced",
]

FINISH = ToolName.FINISH.value
NEXT_ACTION = ToolName.NEXT_ACTION.value


@dataclass(frozen=True)
class ToolCall:
    """Call ``name`` with ``args``."""

    name: str
    args: dict[str, Any]
    id: str

    @property
    def key(self) -> str:
        """Identity used for loop detection."""
        return f"{self.name}:{json.dumps(self.args, sort_keys=True)}"


@dataclass(frozen=True)
class Finish:
    """The step produced the final, schema-valid output."""

    output: BaseModel


@dataclass(frozen=True)
class Invalid:
    """The step's output did not fit; ``error`` tells the model what to fix."""

    error: str


Action = list[ToolCall] | Finish | Invalid


def finish_tool_schema(output_schema: type[BaseModel]) -> dict[str, Any]:
    """The ``finish`` tool (native mode): its arguments are the output schema."""
    return {
        "type": "function",
        "function": {
            "name": FINISH,
            "description": "Finish the task and return the final result.",
            "parameters": output_schema.model_json_schema(),
        },
    }


def _arg_fields(tool: BaseTool) -> dict[str, Any]:
    schema = tool.get_input_schema()
    return {
        name: (field.annotation, field)
        for name, field in schema.model_fields.items()  # type: ignore[union-attr]
        if name not in ("run_manager", "callbacks")
    }


def forced_action_schema(
    tools: Sequence[BaseTool], output_schema: type[BaseModel]
) -> type[BaseModel]:
    """One pydantic model whose ``step`` field is a union of every tool call and ``finish``."""
    variants: list[type[BaseModel]] = []
    for tool in tools:
        variants.append(
            create_model(  # type: ignore[call-overload]
                f"call_{tool.name}",
                __doc__=tool.description,
                action=(Literal[tool.name], ...),  # type: ignore[valid-type, arg-type]
                **_arg_fields(tool),
            )
        )
    variants.append(
        create_model(
            FINISH,
            __doc__="Finish the task with the final result.",
            action=(Literal[FINISH], ...),  # type: ignore[valid-type, arg-type]
            result=(output_schema, ...),
        )
    )
    if len(variants) == 1:
        step_field: Any = (variants[0], Field(description="the action to take now"))
    else:
        union = Union[tuple(variants)]  # type: ignore[valid-type]  # noqa: UP007
        step_field = (union, Field(description="the action to take now", discriminator="action"))
    return create_model(
        NEXT_ACTION,
        __doc__="Choose the next action: call one tool, or finish with the result.",
        step=step_field,
    )


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc or '(root)'}: {err['msg']}")
    return "; ".join(parts)


def _first_call(msg: AIMessage) -> tuple[Any, str | None]:
    if msg.tool_calls:
        return msg.tool_calls[0], None
    if msg.invalid_tool_calls:
        bad = msg.invalid_tool_calls[0]
        return None, f"the arguments of {bad.get('name')} are not valid JSON: {bad.get('error')}"
    return None, "no tool was called"


def parse_native(msg: AIMessage, output_schema: type[BaseModel]) -> Action:
    """Native tool calling: tool calls to run, or a ``finish`` call to validate."""
    if not msg.tool_calls:
        _, error = _first_call(msg)
        return Invalid(f"{error}; call a tool, or call '{FINISH}' with the result")
    for call in msg.tool_calls:
        if call["name"] == FINISH:
            try:
                return Finish(output_schema.model_validate(call["args"]))
            except ValidationError as exc:
                return Invalid(
                    f"'{FINISH}' arguments do not match the result schema: {_format_error(exc)}"
                )
    return [ToolCall(c["name"], dict(c["args"]), c.get("id") or c["name"]) for c in msg.tool_calls]


def parse_forced(msg: AIMessage, action_schema: type[BaseModel]) -> Action:
    """Schema-forced mode: exactly one ``next_action`` call, validated against the union."""
    call, error = _first_call(msg)
    if call is None:
        return Invalid(f"{error}; answer by calling '{NEXT_ACTION}'")
    try:
        step = action_schema.model_validate(call["args"]).step  # type: ignore[attr-defined]
    except ValidationError as exc:
        return Invalid(f"'{NEXT_ACTION}' arguments are invalid: {_format_error(exc)}")
    if step.action == FINISH:
        return Finish(step.result)
    args = step.model_dump(exclude={"action"})
    return [ToolCall(step.action, args, call.get("id") or step.action)]
