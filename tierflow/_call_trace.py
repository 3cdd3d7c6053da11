"""The trace config of one request: run name, tags and metadata, built only when someone listens."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables.config import var_child_runnable_config
from langsmith.utils import tracing_is_enabled

from tierflow._call import CallSite
from tierflow.budget import Ledger
from tierflow.config import TierSpec, public_url
from tierflow.tracing import price_metadata

__all__ = ["trace_config"]


def _listened() -> bool:
    """Whether a callback handler (a stream, a tracer) or LangSmith receives this call's trace."""
    callbacks = (var_child_runnable_config.get() or {}).get("callbacks")
    if callbacks and getattr(callbacks, "handlers", callbacks):
        return True
    return bool(tracing_is_enabled())


def trace_config(
    site: CallSite, tier: str, model: str, endpoint: str, ledger: Ledger, spec: TierSpec
) -> dict[str, Any] | None:
    """Run name, tags and metadata (tier, model, price, budget) of a call's trace.

    None when nobody receives them: merging them into the call's config costs CPU on every
    request.
    """
    if not _listened():
        return None
    remaining = ledger.remaining_usd()
    config: dict[str, Any] = {
        "run_name": f"{site.subagent or site.node} [{tier}]",
        "tags": [f"tier:{tier}", f"node:{site.node}"]
        + ([f"subagent:{site.subagent}"] if site.subagent else []),
        "metadata": {
            "tierflow_tier": tier,
            "tierflow_model": model,
            "tierflow_endpoint": public_url(endpoint),
            "tierflow_node": site.node,
            "tierflow_subagent": site.subagent,
            "tierflow_task_id": site.task_id,
            "tierflow_escalation_reason": site.escalation_reason,
            "tierflow_budget_remaining_usd": remaining,
            **price_metadata(spec),
        },
    }
    return config
