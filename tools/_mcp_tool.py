"""The LangChain tool that stands for one MCP server tool, and the set of them one server offers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from mcp import MCPError
from mcp_types import CallToolResult, Tool
from pydantic import BaseModel, PrivateAttr

from tierflow.errors import SpecError
from tierflow.tools._mcp_schema import args_model, checked_args, result_text, signature
from tierflow.tools._mcp_session import ServerGone, Session, Target
from tierflow.tools.mcp import McpFailure, McpPolicy, McpToolError

__all__ = ["Target", "connect"]

# OpenAI's rule for function names; other providers' are no looser.
_OFFERABLE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GRACE_S = 5.0  # a sync call waits this much past the timeout for the cancelled call to end


class McpTool(BaseTool):
    """One MCP server tool: arguments checked against its schema, a timeout, a capped result.

    ``args_schema`` is the server's JSON schema, offered to native tool calling as it is;
    :meth:`get_input_schema` gives its top-level fields as a pydantic model, for schema-forced
    mode. Every failure raises :class:`McpToolError`, whose message the model is shown.
    """

    remote_name: str
    timeout_s: float
    max_output_chars: int
    _session: Session = PrivateAttr()
    _fields: type[BaseModel] = PrivateAttr()

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The top-level arguments as a pydantic model (what schema-forced mode offers)."""
        return self._fields

    def _schema(self) -> Mapping[str, Any]:
        return self.args_schema if isinstance(self.args_schema, Mapping) else {}

    def _checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        sent, problems = checked_args(self._schema(), kwargs)
        if problems:
            raise McpToolError(self.name, McpFailure.ARGUMENTS,
                               f"bad arguments: {'; '.join(problems)}. Fix: call {self.name} "
                               f"with {signature(self._schema())}.")  # fmt: skip
        return sent

    def _run(self, **kwargs: Any) -> str:
        args = self._checked(kwargs)
        try:
            fut = self._session.submit(self.remote_name, args, self.timeout_s)
            try:
                result = fut.result(self.timeout_s + _GRACE_S)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise TimeoutError() from None
        except Exception as exc:  # noqa: BLE001 - each failure becomes a message for the model
            raise self._failure(exc) from None
        return self._shown(result)

    async def _arun(self, **kwargs: Any) -> str:
        args = self._checked(kwargs)
        try:
            if self._session.broken:  # restarting the server blocks: not on the caller's loop
                fut = await asyncio.to_thread(
                    self._session.submit, self.remote_name, args, self.timeout_s
                )
            else:
                fut = self._session.submit(self.remote_name, args, self.timeout_s)
            # Cancelling this await (a Subagent's tool_timeout_s) cancels the call on the server.
            result = await asyncio.wrap_future(fut)
        except Exception as exc:  # noqa: BLE001 - each failure becomes a message for the model
            raise self._failure(exc) from None
        return self._shown(result)

    def _shown(self, result: CallToolResult) -> str:
        text = result_text(result.content, result.structured_content, self.max_output_chars)
        if result.is_error:
            raise McpToolError(self.name, McpFailure.TOOL_ERROR, text)
        return text

    def _failure(self, exc: BaseException) -> McpToolError:
        if isinstance(exc, McpToolError):
            return exc
        if isinstance(exc, TimeoutError):
            return McpToolError(self.name, McpFailure.TIMEOUT,
                                f"did not finish within {self.timeout_s:g} s and was cancelled; "
                                "call it on less (narrower arguments)")  # fmt: skip
        if isinstance(exc, ServerGone):
            after = ("it is started again on the next call" if self._session.will_restart
                     else "its tools are unavailable: finish without them")  # fmt: skip
            return McpToolError(self.name, McpFailure.STOPPED, f"{exc}; {after}")
        if isinstance(exc, MCPError):
            return McpToolError(self.name, McpFailure.PROTOCOL,
                                f"the MCP server refused the call: {exc.message}")  # fmt: skip
        return McpToolError(self.name, McpFailure.PROTOCOL, f"{type(exc).__name__}: {exc}")


def _check_names(listed: list[str], policy: McpPolicy, label: str) -> None:
    """``allow`` and ``deny`` name tools the server has; every tool offered has a usable name."""
    for field in ("allow", "deny"):
        unknown = sorted(set(getattr(policy, field) or ()) - set(listed))
        if unknown:
            raise SpecError(
                f"McpPolicy.{field} names {unknown}, which the MCP server {label!r} does not "
                f"offer. It offers: {', '.join(listed) or '(no tools)'}."
            )
    for name in listed:
        if policy.allow is not None and name not in policy.allow or name in policy.deny:
            continue
        if not _OFFERABLE.match(policy.prefix + name):
            raise SpecError(
                f"the MCP server {label!r} has a tool named {policy.prefix + name!r}, which "
                "cannot be offered to a model (names are letters, digits, '_' and '-', 64 at "
                f"most). Fix: McpPolicy(deny=({name!r},)), or a shorter prefix."
            )


def _tool(session: Session, listed: Tool, policy: McpPolicy) -> McpTool:
    name = policy.prefix + listed.name
    description = (listed.description or listed.title or "").strip() or f"MCP tool {listed.name}"
    schema = dict(listed.input_schema or {"type": "object", "properties": {}})
    tool = McpTool(
        name=name,
        description=description,
        args_schema=schema,
        remote_name=listed.name,
        timeout_s=policy.timeout_s,
        max_output_chars=policy.max_output_chars,
        metadata={"mcp_server": session.target.label},
    )
    tool._session = session
    tool._fields = args_model(name, schema)
    return tool


def connect(target: Target, policy: McpPolicy) -> tuple[Session, list[BaseTool]]:
    """A session to ``target`` and the tools ``policy`` offers; nothing is left running on error."""
    session = Session(target, policy.startup_timeout_s, policy.restarts)
    try:
        listed = session.open()
        _check_names([t.name for t in listed], policy, target.label)
        offered = [
            t for t in listed
            if (policy.allow is None or t.name in policy.allow) and t.name not in policy.deny
        ]  # fmt: skip
        return session, [_tool(session, t, policy) for t in offered]
    except BaseException:
        session.close()
        raise
