"""The public-benchmark graphs (GSM8K, MMLU, MBPP, BFCL forced and native), one cascade each.

Each is a routed, verified cascade (:mod:`tierflow.nodes.cascade`)::

    START -> route --Send--> solve -> verify --(rejected, a tier left)--> solve ... -> END

Input: ``{"task": {...}, "task_id": "..."}``; output: ``answer``, ``tier``, ``status``,
``attempts``, ``route`` and ``calibration`` (the task and answer schemas, readers and verifiers
are :mod:`tierflow.graphs.benchmarks.specs`'). ``tierflow calibrate <name>`` writes the
calibration a graph loads at run time.

Example:
    >>> sorted(n for n in build("gsm8k").compile().get_graph().nodes if not n.startswith("__"))
    ['route', 'solve', 'verify']
"""

from __future__ import annotations

from langgraph.graph import StateGraph

from tierflow.graphs.benchmarks.specs import CASCADES
from tierflow.nodes.cascade import CascadeInput, CascadeOutput, CascadeState, build_cascade
from tierflow.runtime import RunContext

__all__ = ["build", "gsm8k", "mmlu", "mbpp", "bfcl", "bfcl_native"]


def build(name: str) -> StateGraph[CascadeState, RunContext, CascadeInput, CascadeOutput]:
    """Uncompiled graph of benchmark ``name`` (choose the checkpointer at ``compile()``)."""
    return build_cascade(CASCADES[name])


# One compiled graph per benchmark; langgraph.json names each (``graph.py:gsm8k``, ...), and
# the name is its root run's in traces.
gsm8k = build("gsm8k").compile(name="gsm8k")
mmlu = build("mmlu").compile(name="mmlu")
mbpp = build("mbpp").compile(name="mbpp")
bfcl = build("bfcl").compile(name="bfcl")
bfcl_native = build("bfcl_native").compile(name="bfcl_native")
