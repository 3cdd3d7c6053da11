"""Routing: one node where the planner-tier model picks the cheapest tier for a subagent task.

Input: ``{"task": "<what the subagent must do>", "subagent": "<its name>"}``.
Output: ``choice`` = a tier name of the ladder (None when the call failed, with ``error``).
The routing eval suite scores ``choice`` against the cheapest tier that solves the task.

Example:
    >>> sorted(n for n in build().compile().get_graph().nodes if not n.startswith("__"))
    ['route']
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from tierflow.budget import begin_run
from tierflow.graphs.routing.oracle import oracle
from tierflow.graphs.routing.suite import make_input, score
from tierflow.graphspec import EvalSuite, GraphSpec
from tierflow.nodes.router import ROUTE_NODE, Router, RoutingState, TierChoice, router_node
from tierflow.protocol import Node
from tierflow.runtime import RunContext

NAME = "routing"  # the graph's name in langgraph.json, and its root run's in traces

__all__ = ["PROMPT", "ROUTER", "ROUTE_NODE", "TierChoice", "RoutingState", "build", "SPEC", "graph"]

PROMPT = (
    "You route subagent tasks to model tiers. Pick the CHEAPEST tier expected to solve the task "
    "reliably: nano = simple classification or lookup, one field, a fixed template; mini = "
    "multi-field extraction, search with a single target, grounded answers from one source, short "
    "replies to simple cases; flagship = multi-step reasoning across sources, synthesis, policy "
    "judgement, customer replies to complex or sensitive cases."
)

ROUTER = Router(prompt=PROMPT, name=ROUTE_NODE)


def build() -> StateGraph[RoutingState, RunContext, RoutingState, RoutingState]:
    """Uncompiled routing graph (one model call through the engine)."""
    builder = StateGraph(RoutingState, context_schema=RunContext)
    builder.add_node(Node.BEGIN.value, begin_run)
    builder.add_node(ROUTER.name, router_node(ROUTER))
    builder.add_edge(START, Node.BEGIN.value)
    builder.add_edge(Node.BEGIN.value, ROUTER.name)
    builder.add_edge(ROUTER.name, END)
    return builder


SPEC = GraphSpec(
    name=NAME,
    build=build,
    suite=EvalSuite(dataset="routing.jsonl", make_input=make_input, score=score, oracle=oracle),
)
graph = SPEC.compile()
