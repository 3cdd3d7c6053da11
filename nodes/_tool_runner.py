"""The ``tools`` phase of a subagent task: its pending calls, each under a timeout and a cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from tierflow.calling import emit
from tierflow.nodes._phases import off_loop
from tierflow.nodes._spec import Subagent
from tierflow.nodes._task_state import TaskView
from tierflow.protocol import StreamEvent

__all__ = ["make_tools_node", "run_tool"]


def make_tools_node(spec: Subagent) -> Callable[..., Any]:
    """The ``tools`` phase of ``spec``: run the pending calls, their results into the transcript."""

    async def run_tools(state: TaskView) -> dict[str, Any]:
        env = state.get("env") or {}
        tools = await off_loop(callable(spec.tools), spec.tools_for, env)
        by_name = {t.name: t for t in tools}
        results: list[BaseMessage] = []
        for call in state.get("pending") or []:
            text = await run_tool(by_name, call["name"], call["args"], spec.tool_timeout_s)
            text = _capped(text, spec.max_tool_chars)
            if call.get("forced"):
                results.append(HumanMessage(f"Result of {call['name']}:\n{text}"))
            else:
                results.append(ToolMessage(text, tool_call_id=call["id"], name=call["name"]))
        return {"pending": [], "transcript": [*(state.get("transcript") or []), *results]}

    return run_tools


def _capped(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, with a note of how many lines were left out."""
    if len(text) <= max_chars:
        return text
    cut = text.count("\n", max_chars)
    return text[:max_chars] + f"\n... ({cut} more lines cut; narrow the call)"


async def run_tool(
    by_name: Mapping[str, BaseTool], name: str, args: dict[str, Any], timeout_s: float
) -> str:
    """The result of one call as the model is shown it; errors and timeouts become text."""
    tool = by_name.get(name)
    if tool is None:
        return f"Error: there is no tool '{name}'. Available: {', '.join(sorted(by_name))}."
    started = time.monotonic()
    try:
        return str(await asyncio.wait_for(tool.ainvoke(args), timeout_s))
    except TimeoutError:
        return f"Error: {name} did not finish within {timeout_s:g} s; call it on less (a narrower path or pattern)."
    except ValidationError as exc:
        return (
            f"Error: bad arguments for {name}: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})"
        )
    except Exception as exc:  # noqa: BLE001 - tool errors are shown to the model, not raised
        return f"Error from {name}: {exc}"
    finally:
        elapsed = time.monotonic() - started
        emit({"event": StreamEvent.TOOL_CALL.value, "tool": name, "elapsed_s": round(elapsed, 3),
              "timeout_s": timeout_s, "timed_out": elapsed >= timeout_s})  # fmt: skip
