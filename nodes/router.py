"""Router node: one planner-tier model call picks the cheapest tier expected to solve a task.

The node reads ``task`` and ``subagent`` from the state and writes ``choice`` (a tier name, or
None when the call failed or its answer was not a :class:`TierChoice`), ``error`` and the
call's ``usage``. A failed call is reported in the state, never raised, so one bad example
does not end an eval.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, ValidationError

from tierflow.calling import CallSite, call_model
from tierflow.errors import InputError, ModelCallError
from tierflow.protocol import Node
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.state import EngineState
from tierflow.tiers import Site, SiteKind, start_tier

__all__ = ["ROUTE_NODE", "TierChoice", "RoutingState", "Router", "RouterNode", "router_node"]

ROUTE_NODE = Node.ROUTE.value


class TierChoice(BaseModel):
    """The cheapest tier expected to solve the task."""

    tier: str = Field(description="one of the ladder's tiers, e.g. nano, mini or flagship")
    reason: str = Field(default="", description="one short sentence")


class RoutingState(EngineState, total=False):
    """Input ``task`` and ``subagent``; output ``choice`` (a tier name, or None on failure)."""

    task: str
    subagent: str
    choice: str | None
    error: str | None


class RouterNode(Protocol):
    """The node function: state in, state update out (LangGraph passes ``runtime`` by name)."""

    def __call__(
        self, state: RoutingState, *, runtime: Runtime[RunContext]
    ) -> Awaitable[dict[str, Any]]:
        """Route the state's ``task``; return ``choice``, ``error`` and ``usage``."""
        ...


@dataclass(frozen=True)
class Router:
    """Declaration of a router node.

    Attributes:
        prompt: routing instructions; the ladder's tiers, cheapest first, are appended.
        name: node name, also the call site's node in usage records.
    """

    prompt: str
    name: str = ROUTE_NODE


def _choice(message: Any) -> str:
    if message is None or not message.tool_calls:
        raise InputError("the router's answer made no TierChoice call: it must call TierChoice")
    return TierChoice.model_validate(message.tool_calls[0]["args"]).tier


def router_node(spec: Router) -> RouterNode:
    """The async node function of ``spec``, for a graph whose state is a :class:`RoutingState`.

    Example:
        >>> node = router_node(Router(prompt="Pick the cheapest tier."))
        >>> node.__name__
        'route'
    """
    site = Site(SiteKind.ROUTER)

    async def route(state: RoutingState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        engine = engine_for(runtime.context)
        tier = start_tier(site, context_of(runtime).policy, engine.config)
        ladder = ", ".join(engine.config.ladder)
        messages = [
            SystemMessage(f"{spec.prompt}\nTiers, cheapest first: {ladder}."),
            HumanMessage(f"Subagent: {state.get('subagent')}\nTask: {state.get('task')}"),
        ]
        try:
            out = await call_model(
                engine,
                CallSite(node=spec.name, tier=tier),
                state,
                messages,
                tools=[TierChoice],
                tool_choice=TierChoice.__name__,
                retry=context_of(runtime).retry,
                policy=context_of(runtime).policy,  # unattended runs stop at the gate, never wait
            )
        except ModelCallError as exc:
            return {"usage": exc.records, "choice": None, "error": str(exc)}
        update: dict[str, Any] = out.state_update()
        if out.message is None:  # the budget gate stopped the call (declared policy or a human)
            return {**update, "choice": None, "error": f"{out.stopped}: {'; '.join(out.notes)}"}
        try:
            choice = _choice(out.message)
        except (ValidationError, InputError) as exc:
            return {**update, "choice": None, "error": str(exc)[:300]}
        return {**update, "choice": choice, "error": None}

    return route
