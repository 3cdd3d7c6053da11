"""Routing: one node where the planner-tier model picks a subagent task's cheapest tier."""

from tierflow.graphs.routing.graph import *  # noqa: F403
from tierflow.graphs.routing.graph import __all__  # noqa: F401
