"""The routing suite's one-node graph: the planner-tier model picks the cheapest tier for a task."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, ValidationError

from tierflow.calling import CallSite, call_model
from tierflow.errors import ModelCallError
from tierflow.runtime import RunContext, context_of, engine_for
from tierflow.state import EngineState

__all__ = ["TierChoice", "RoutingState", "build_routing_graph", "ROUTE_NODE"]

ROUTE_NODE = "route"

PROMPT = (
    "You route subagent tasks to model tiers. Pick the CHEAPEST tier expected to solve the task "
    "reliably: nano = simple classification or lookup, one field, a fixed template; mini = "
    "multi-field extraction, search with a single target, grounded answers from one source, short "
    "replies to simple cases; flagship = multi-step reasoning across sources, synthesis, policy "
    "judgement, customer replies to complex or sensitive cases."
)


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


async def _route(state: RoutingState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    engine = engine_for(runtime.context)
    policy = context_of(runtime).policy
    tier = policy.planner(engine.config)
    ladder = ", ".join(engine.config.ladder)
    messages = [
        SystemMessage(f"{PROMPT}\nTiers, cheapest first: {ladder}."),
        HumanMessage(f"Subagent: {state.get('subagent')}\nTask: {state.get('task')}"),
    ]
    retry = context_of(runtime).retry
    try:
        out = await call_model(
            engine,
            CallSite(node=ROUTE_NODE, tier=tier),
            state,
            messages,
            tools=[TierChoice],
            tool_choice=TierChoice.__name__,
            retry=retry,
        )
    except ModelCallError as exc:
        return {"usage": exc.records, "choice": None, "error": str(exc)}
    update: dict[str, Any] = out.state_update()
    msg = out.message
    try:
        if msg is None or not msg.tool_calls:
            raise ValueError("no TierChoice call was made")
        choice = TierChoice.model_validate(msg.tool_calls[0]["args"]).tier
    except (ValidationError, ValueError) as exc:
        return {**update, "choice": None, "error": str(exc)[:300]}
    return {**update, "choice": choice, "error": None}


def build_routing_graph() -> StateGraph[Any, RunContext, Any, Any]:
    """Uncompiled routing graph (one model call through the engine)."""
    builder = StateGraph(RoutingState, context_schema=RunContext)
    builder.add_node(ROUTE_NODE, _route)
    builder.add_edge(START, ROUTE_NODE)
    builder.add_edge(ROUTE_NODE, END)
    return builder
