"""GSM8K: grade-school math word problems; answers checked by agreement of two samples.

A routed, verified cascade (:mod:`tierflow.nodes.cascade`)::

    START -> route --Send--> solve -> verify --(rejected, a tier left)--> solve ... -> END

Input: ``{"task": {...}, "task_id": "..."}``; output: ``answer``, ``tier``, ``status``,
``attempts``, ``route`` and ``calibration`` (see :mod:`tierflow.nodes.benchmarks` for the task
and answer schemas). ``tierflow calibrate gsm8k`` writes the calibration this graph loads.

Example:
    >>> sorted(n for n in build().compile().get_graph().nodes if not n.startswith("__"))
    ['route', 'solve', 'verify']
"""

from __future__ import annotations

from langgraph.graph import StateGraph

from tierflow.nodes.benchmarks import GSM8K
from tierflow.nodes.cascade import CascadeInput, CascadeOutput, CascadeState, build_cascade
from tierflow.runtime import RunContext

NAME = "gsm8k"  # the graph's name in langgraph.json, and its root run's in traces

__all__ = ["build", "graph"]


def build() -> StateGraph[CascadeState, RunContext, CascadeInput, CascadeOutput]:
    """Uncompiled gsm8k graph (choose the checkpointer at ``compile()``)."""
    return build_cascade(GSM8K)


graph = build().compile(name=NAME)
