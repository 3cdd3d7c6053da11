"""What is wrong with an agent's reply, by tierflow's escalation reasons (or None: accept it).

Checked in this order, the first problem wins: the schema (tool calls that name no offered tool,
carry unparseable or ill-typed arguments, a ``create_agent`` ``response_format`` the reply did not
fit, a final answer that is not JSON of ``response_schema``), a loop (the same tool call repeated
past ``max_repeats`` since the user's last message), then the user's verifier on a final answer.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware.types import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from tierflow.calling import tool_dicts
from tierflow.checks import Check, CheckSite, schema_problems, verdict_event
from tierflow.protocol import EscalationReason

__all__ = ["Problem", "ReplyChecks", "call_key", "repair_note"]


@dataclass(frozen=True)
class Problem:
    """Why a reply climbs: an :class:`~tierflow.protocol.EscalationReason` and what was wrong."""

    reason: EscalationReason
    detail: str


@dataclass(frozen=True)
class ReplyChecks:
    """The checks a TierMiddleware runs on every reply."""

    verifier: Check | None = None
    response_schema: type[BaseModel] | None = None
    max_repeats: int = 1

    async def problem(
        self, request: ModelRequest[Any], response: ModelResponse[Any], tier: str
    ) -> tuple[Problem | None, list[dict[str, Any]]]:
        """The reply's first problem (or None) and the ``verified`` events of the checks run."""
        reply = next((m for m in response.result if isinstance(m, AIMessage)), None)
        if reply is None:
            return Problem(EscalationReason.SCHEMA_VALIDATION, "the model gave no reply"), []
        found = _schema(request, response, reply, self.response_schema)
        found = found or _loop(request.messages, reply, self.max_repeats)
        if found is not None or self.verifier is None or _client_calls(request, reply):
            return found, []
        output = response.structured_response
        output = reply if output is None else output
        verdict = await asyncio.to_thread(
            self.verifier, _request_text(request.messages), output, request.state
        )
        notes = [verdict_event(CheckSite.AGENT, verdict, tier=tier)]
        if verdict.ok:
            return None, notes
        why = verdict.reason or "the verifier rejected it"
        return Problem(EscalationReason.VERIFIER_REJECTED, why), notes


def call_key(name: str, args: Any) -> str:
    """Identity of a tool call for loop detection (as a subagent's, :mod:`tierflow.nodes.actions`)."""
    return f"{name}:{json.dumps(args, sort_keys=True, default=str)}"


def repair_note(reply: AIMessage | None, problem: Problem) -> list[BaseMessage]:
    """What a repair on the same tier adds to the request: the rejected reply and why."""
    calls = [{"name": c["name"], "args": c["args"]} for c in (reply.tool_calls if reply else [])]
    shown = (reply.text if reply else "") or json.dumps(calls)[:2000]
    return [
        AIMessage(shown),
        HumanMessage(
            f"That reply was rejected ({problem.reason.value}): {problem.detail}. Try again."
        ),  # fmt: skip
    ]


def _function_tools(request: ModelRequest[Any]) -> list[dict[str, Any]]:
    tools = [t for t in request.tools if isinstance(t, BaseTool) or t.get("type") == "function"]
    return tool_dicts(tools)


def _client_calls(request: ModelRequest[Any], reply: AIMessage) -> list[ToolCall]:
    names = {t["function"]["name"] for t in _function_tools(request)}
    return [c for c in reply.tool_calls if c["name"] in names]


def _schema(
    request: ModelRequest[Any],
    response: ModelResponse[Any],
    reply: AIMessage,
    response_schema: type[BaseModel] | None,
) -> Problem | None:
    bad = EscalationReason.SCHEMA_VALIDATION
    if reply.invalid_tool_calls:
        call = reply.invalid_tool_calls[0]
        return Problem(bad, f"tool call {call.get('name')!r} has unparseable arguments "
                            f"({call.get('error') or 'not JSON'})")  # fmt: skip
    offered = _function_tools(request)
    names = {t["function"]["name"] for t in offered}
    unknown = [c["name"] for c in reply.tool_calls if c["name"] not in names]
    if unknown and request.response_format is None:
        return Problem(bad, f"no tool named {unknown[0]!r}; offered: {', '.join(sorted(names))}")
    calls = [{"name": c["name"], "arguments": c["args"]} for c in _client_calls(request, reply)]
    said = schema_problems(calls, offered) if calls else None
    if said:
        return Problem(bad, said)
    if request.response_format is not None and response.structured_response is None:
        failed = [m for m in response.result if isinstance(m, ToolMessage)]
        if unknown and failed:  # create_agent sent the validation error back as a tool result
            return Problem(bad, f"the reply does not fit the response format: {failed[0].text}")
    if response_schema is not None and not reply.tool_calls:
        return _not_json_of(reply.text, response_schema)
    return None


def _not_json_of(text: str, schema: type[BaseModel]) -> Problem | None:
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        schema.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the reply"
        detail = f"the answer is not a valid {schema.__name__}: {first['msg']} at {where}"
        return Problem(EscalationReason.SCHEMA_VALIDATION, detail)
    return None


def _loop(messages: Sequence[BaseMessage], reply: AIMessage, max_repeats: int) -> Problem | None:
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    seen = Counter(
        call_key(c["name"], c["args"])
        for m in messages[start + 1 :]
        if isinstance(m, AIMessage)
        for c in m.tool_calls
    )
    for call in reply.tool_calls:
        key = call_key(call["name"], call["args"])
        if seen[key] > max_repeats:
            detail = f"{key} (called {seen[key]} times before in this turn)"
            return Problem(EscalationReason.LOOP_DETECTED, detail)
    return None


def _request_text(messages: Sequence[BaseMessage]) -> str:
    """What the user asked: the text of the last human message."""
    human = [m for m in messages if isinstance(m, HumanMessage)]
    return human[-1].text if human else ""
