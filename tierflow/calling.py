"""The one path every model request takes: budget check, retries, fallbacks, usage record.

A node makes at most one :func:`call_model` per execution, so an interrupt (budget, human)
never replays a request that was already paid for. The steps live in private modules, one
concern each: the budget gate (``_budget_gate``), the response cache (``_cache_hit``), the
attempts on each endpoint (``_attempts``), the usage record (``_usage_record``) and the
trace config (``_call_trace``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.types import RetryPolicy

from tierflow._attempts import MAX_RETRY_AFTER_S, Call, attempt_all, retry_policy
from tierflow._budget_gate import BUDGET_OPTIONS, budget_gate
from tierflow._cache_hit import cache_key, cached
from tierflow._call import CallOutcome, CallSite, Request, emit
from tierflow._memo import IdentityMemo
from tierflow.budget import ledger_for, run_id_of
from tierflow.runtime import Engine
from tierflow.tiers import TierPolicy

__all__ = [
    "CallSite",
    "CallOutcome",
    "call_model",
    "emit",
    "BUDGET_OPTIONS",
    "MAX_RETRY_AFTER_S",
    "tool_dicts",
]

_tool_dict: IdentityMemo[dict[str, Any]] = IdentityMemo(convert_to_openai_tool)


def tool_dicts(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI tool dicts of ``tools``, converted once per tool object (schemas are reused)."""
    return [
        tool if isinstance(tool, dict) and tool.get("type") == "function" else _tool_dict(tool)
        for tool in tools
    ]


async def call_model(
    engine: Engine,
    site: CallSite,
    state: Mapping[str, Any],
    messages: Sequence[BaseMessage],
    *,
    tools: Sequence[Any] = (),
    tool_choice: str | None = None,
    retry: RetryPolicy | None = None,
    policy: TierPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
) -> CallOutcome:
    """Make one model request for ``site`` under the run's budget.

    ``params`` are sampling parameters of this request (``temperature``, ``seed``), over the
    tier's own (temperature 0). With a response cache on the engine (``RunContext.response_cache``)
    a request made before with the same model, messages, tools and parameters is answered from
    it (see :mod:`tierflow.cache`). ``max_tokens`` caps this request's output below the tier's
    ``max_output_tokens`` (a one-letter answer needs a few tokens, not 512).

    The budget gate reserves the request's worst case first, with ``max_tokens`` clamped to
    what the budget left can pay; when nothing useful fits it asks a human, or follows
    ``policy.on_budget`` in unattended runs. Transient errors are retried with backoff
    (LangGraph's RetryPolicy values, transient-only ``retry_on``), then the tier's fallback
    endpoints are tried. Every attempt, failed or not, becomes a UsageRecord; a failed attempt
    the provider may have processed (a timeout after sending, a connection lost mid-reply) is
    charged at its reservation (``billing="estimated"``), any other costs $0 (its ``cause``).

    Raises:
        ModelCallError: the request failed on every endpoint, or failed for a non-transient reason.
    """
    request = Request(messages, tool_dicts(tools), tool_choice, params or {})
    ledger = ledger_for(state)
    gate = await budget_gate(engine, site, ledger, policy or TierPolicy(), messages, request.tools)
    if gate.stopped or gate.reservation is None:
        return CallOutcome(None, [], gate.tier, gate.budget_usd, gate.stopped, gate.notes)
    if max_tokens is not None and gate.reservation.max_tokens > max_tokens:
        gate.reservation = dataclasses.replace(gate.reservation, max_tokens=max(1, max_tokens))
    run_id = run_id_of(state)
    key = cache_key(engine, gate, request)
    if key is not None:
        try:
            hit = await cached(engine, site, ledger, gate, key, run_id)
        except BaseException:  # cancelled (or the cache failed) before anything was sent
            await ledger.asettle(gate.reservation, None)
            raise
        if hit is not None:
            return hit
    retries = retry_policy(retry, engine.config.tier(gate.tier))
    return await attempt_all(Call(engine, site, request, ledger, gate, retries, run_id, key))
