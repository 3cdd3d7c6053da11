"""BFCL with native tool calling: the functions are offered as tools; the calls made are the answer.

A routed, verified cascade (:mod:`tierflow.nodes.cascade`)::

    START -> route --Send--> solve -> verify --(rejected, a tier left)--> solve ... -> END

Input: ``{"task": {...}, "task_id": "..."}``; output: ``answer``, ``tier``, ``status``,
``attempts``, ``route`` and ``calibration`` (see :mod:`tierflow.nodes.benchmarks` for the task
and answer schemas). ``tierflow calibrate bfcl_native`` writes the calibration this graph loads.

Example:
    >>> sorted(n for n in build().compile().get_graph().nodes if not n.startswith("__"))
    ['route', 'solve', 'verify']
"""

from __future__ import annotations

from langgraph.graph import StateGraph

from tierflow.nodes.benchmarks import BFCL_NATIVE
from tierflow.nodes.cascade import CascadeInput, CascadeOutput, CascadeState, build_cascade
from tierflow.runtime import RunContext

NAME = "bfcl_native"  # the graph's name in langgraph.json, and its root run's in traces

__all__ = ["build", "graph"]


def build() -> StateGraph[CascadeState, RunContext, CascadeInput, CascadeOutput]:
    """Uncompiled bfcl_native graph (choose the checkpointer at ``compile()``)."""
    return build_cascade(BFCL_NATIVE)


graph = build().compile(name=NAME)
