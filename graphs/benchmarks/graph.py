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

from functools import partial

from langgraph.graph import StateGraph

from tierflow.graphs.benchmarks.specs import CASCADES
from tierflow.graphspec import EvalSuite, GraphSpec, InputRules
from tierflow.nodes.cascade import CascadeInput, CascadeOutput, CascadeState, build_cascade
from tierflow.runtime import RunContext

__all__ = ["build", "SPECS", "gsm8k", "mmlu", "mbpp", "bfcl", "bfcl_native"]


def build(name: str) -> StateGraph[CascadeState, RunContext, CascadeInput, CascadeOutput]:
    """Uncompiled graph of benchmark ``name`` (choose the checkpointer at ``compile()``)."""
    return build_cascade(CASCADES[name])


# One spec per benchmark graph; its suite is the public benchmark it runs (bfcl_native runs
# BFCL's items with the functions offered as native tools), read and scored by evals.
# The cascade's input has ``env`` (its verifiers get it): the CLI fills ``env.root`` as ever.
SPECS = {
    name: GraphSpec(
        name=name,
        build=partial(build, name),
        inputs=InputRules(root_key="env"),
        suite=EvalSuite(benchmark=benchmark),
    )
    for name, benchmark in (
        ("gsm8k", "gsm8k"),
        ("mmlu", "mmlu"),
        ("mbpp", "mbpp"),
        ("bfcl", "bfcl"),
        ("bfcl_native", "bfcl"),
    )
}
# One compiled graph per benchmark; langgraph.json names each (``graph.py:gsm8k``, ...), and
# the name is its root run's in traces.
gsm8k = SPECS["gsm8k"].compile()
mmlu = SPECS["mmlu"].compile()
mbpp = SPECS["mbpp"].compile()
bfcl = SPECS["bfcl"].compile()
bfcl_native = SPECS["bfcl_native"].compile()
