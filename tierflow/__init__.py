"""Tierflow: LangGraph supervisor graphs that route work to flagship, mini and nano model tiers.

The names a graph author needs are importable from here; each is imported on first use, so
``import tierflow`` (and the ``tierflow`` command) does not load langchain or langgraph.

Example:
    >>> from tierflow import POLICIES, TierPolicy
    >>> isinstance(POLICIES["tiered"], TierPolicy)
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tierflow.config import load_config
    from tierflow.errors import TierflowError
    from tierflow.nodes.subagent import ContextPolicy, Subagent, build_subagent, subagent_node
    from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
    from tierflow.runner import Runner
    from tierflow.runtime import POLICIES, RunContext, TierPolicy
    from tierflow.testing import ScriptedChatModel

__all__ = [
    "Subagent",
    "ContextPolicy",
    "build_subagent",
    "subagent_node",
    "Supervisor",
    "build_supervisor_graph",
    "RunContext",
    "TierPolicy",
    "POLICIES",
    "load_config",
    "Runner",
    "TierflowError",
    "ScriptedChatModel",
]

# Public name -> the module that defines it (keep in step with the TYPE_CHECKING block).
_EXPORTS = {
    "Subagent": "tierflow.nodes.subagent",
    "ContextPolicy": "tierflow.nodes.subagent",
    "build_subagent": "tierflow.nodes.subagent",
    "subagent_node": "tierflow.nodes.subagent",
    "Supervisor": "tierflow.nodes.supervisor",
    "build_supervisor_graph": "tierflow.nodes.supervisor",
    "RunContext": "tierflow.runtime",
    "TierPolicy": "tierflow.runtime",
    "POLICIES": "tierflow.runtime",
    "load_config": "tierflow.config",
    "Runner": "tierflow.runner",
    "TierflowError": "tierflow.errors",
    "ScriptedChatModel": "tierflow.testing",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562), then cache the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tierflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
