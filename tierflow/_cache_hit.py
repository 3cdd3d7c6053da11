"""The response cache's side of a call: its key, and the outcome of a request answered before."""

from __future__ import annotations

import asyncio
import time

from tierflow._budget_gate import Gate
from tierflow._call import CallOutcome, CallSite, Request, emit
from tierflow._usage_record import progress, usage_record
from tierflow.budget import Ledger
from tierflow.runtime import Engine

__all__ = ["cache_key", "cached"]


def cache_key(engine: Engine, gate: Gate, request: Request) -> tuple[str, str] | None:
    """The response cache's key of the gated request, or None without a cache."""
    if engine.cache is None:
        return None
    assert gate.reservation is not None
    params = {**request.params, "max_tokens": gate.reservation.max_tokens}
    return engine.request_key(gate.tier, request.messages, request.tools, request.tool_choice,
                              params)  # fmt: skip


async def cached(
    engine: Engine,
    site: CallSite,
    ledger: Ledger,
    gate: Gate,
    key: tuple[str, str],
    run_id: str | None,
) -> CallOutcome | None:
    """The outcome of a request the response cache has answered before, or None."""
    assert engine.cache is not None and gate.reservation is not None
    hit = await asyncio.to_thread(engine.cache.get, key)
    if hit is None:
        return None
    msg, latency = hit
    tier = gate.tier
    endpoint = engine.endpoints(tier)[0]
    rec = usage_record(engine, site, tier, endpoint.base_url, engine.model_name(tier),
                       time.monotonic(), msg, None, run_id)  # fmt: skip
    rec.update(latency_s=latency, cached_response=True)
    await ledger.asettle(gate.reservation, rec)
    emit(progress(site, rec, ledger))
    return CallOutcome(msg, [rec], tier, gate.budget_usd, notes=gate.notes)
