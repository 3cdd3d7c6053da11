"""Run-level trace settings (LangSmith / any LangChain tracer): graph name, thread id, prices.

Model calls already carry ``tierflow_*`` metadata and ``tier:``/``node:`` tags (see
:mod:`tierflow.calling`). This module adds what only the caller of a graph knows: which graph and
thread a trace belongs to. Metadata in a run's config is inherited by every child run, so each
model call in LangSmith can be filtered by ``tierflow_graph`` and ``tierflow_thread_id``.

Example:
    >>> from tierflow.tracing import graph_run_config
    >>> cfg = graph_run_config("codebase_qa", "t-1", {"configurable": {"thread_id": "t-1"}})
    >>> cfg["run_name"], cfg["metadata"]["tierflow_graph"], cfg["configurable"]["thread_id"]
    ('codebase_qa', 'codebase_qa', 't-1')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierflow.config import TierSpec

__all__ = ["graph_run_config", "price_metadata"]


def graph_run_config(
    graph: str, thread_id: str, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``config`` plus a root run named after the graph, and graph/thread metadata and tags.

    Existing tags and metadata in ``config`` are kept (tierflow's keys win on a clash).
    """
    base = dict(config or {})
    tags = list(base.get("tags") or [])
    tags += [t for t in (f"graph:{graph}",) if t not in tags]
    return {
        **base,
        "run_name": base.get("run_name") or graph,
        "tags": tags,
        "metadata": {
            **dict(base.get("metadata") or {}),
            "tierflow_graph": graph,
            "tierflow_thread_id": thread_id,
        },
    }


def price_metadata(spec: TierSpec) -> dict[str, float]:
    """The tier's prices (USD per 1M tokens) as trace metadata, so a trace viewer can price a call.

    The call's cost itself is only known after the reply; it is in the run's usage records and
    follows from these prices and the token counts LangSmith shows on the run.
    """
    return {
        "tierflow_price_input_usd_per_mtok": spec.price.input,
        "tierflow_price_cached_input_usd_per_mtok": spec.price.cached_input,
        "tierflow_price_output_usd_per_mtok": spec.price.output,
    }
