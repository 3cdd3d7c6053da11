"""Codebase QA: questions about a source tree, answered from checked file:line evidence.

``graph.py`` wires the supervisor and its subagents and exposes ``graph`` (LangGraph's
app-template shape); beside it the workflow's own schemas, search, claims and grounding.
"""

from tierflow.graphs.codebase_qa.graph import *  # noqa: F403
from tierflow.graphs.codebase_qa.graph import __all__  # noqa: F401
