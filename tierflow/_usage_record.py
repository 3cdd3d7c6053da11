"""The usage record of one request attempt, and the progress event a finished call emits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage

from tierflow._call import CallSite
from tierflow._failures import failure_cause, never_sent_detail
from tierflow.budget import Ledger
from tierflow.config import public_url
from tierflow.pricing import cache_read_tokens, cost_usd
from tierflow.protocol import FailureCause, StreamEvent
from tierflow.runtime import Engine

__all__ = ["usage_record", "maybe_billed", "progress"]


def usage_record(
    engine: Engine,
    site: CallSite,
    tier: str,
    endpoint: str,
    model: str,
    started: float,
    msg: AIMessage | None,
    error: BaseException | None,
    run_id: str | None,
    charge_usd: float | None = None,
    service_tier: str | None = None,
) -> dict[str, Any]:
    """The UsageRecord of one attempt, as the plain dict that state keeps (every field set).

    ``service_tier`` is the one requested at this endpoint (default: the tier's); the one the
    reply reports, when it reports one, prices the request instead.
    """
    usage: Any = (msg.usage_metadata if msg is not None else None) or {}
    inp = int(usage.get("input_tokens") or 0)
    out = int(usage.get("output_tokens") or 0)
    cached = cache_read_tokens(usage)
    spec = engine.config.tier(tier)
    served = (msg.response_metadata.get("service_tier") if msg is not None else None) or (
        service_tier or spec.service_tier
    )
    price = spec.price_for(served)
    cost = cost_usd(price, input_tokens=inp, cached_tokens=cached, output_tokens=out)
    cause = None if error is None else failure_cause(error)
    # A dict with UsageRecord's fields (a unit test checks it validates and round-trips):
    # building and dumping a model per call would only cost time.
    return dict(
        id=uuid.uuid4().hex,
        node=site.node,
        subagent=site.subagent,
        task_id=site.task_id,
        tier=tier,
        model=model,
        endpoint=public_url(endpoint),
        reasoning_effort=spec.reasoning_effort,
        service_tier=served,
        input_tokens=inp,
        cached_tokens=cached,
        output_tokens=out,
        latency_s=round(time.monotonic() - started, 4),
        cost_usd=cost if charge_usd is None else charge_usd,
        billing="reported" if charge_usd is None else "estimated",
        error=None if error is None else _describe(error, cause, tier, endpoint, spec.timeout_s),
        cause=None if cause is None else cause.value,
        escalation_reason=site.escalation_reason,
        # Wall-clock start of the request (latency_s is measured on the monotonic clock).
        started_at=round(time.time() - (time.monotonic() - started), 4),
        run_id=run_id,
        cached_response=False,
    )


def maybe_billed(exc: BaseException) -> bool:
    """Failures after which the server may have done (and billed) the work."""
    return failure_cause(exc) is FailureCause.POSSIBLY_PROCESSED


def _describe(
    error: BaseException, cause: FailureCause | None, tier: str, endpoint: str, timeout_s: float
) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"TimeoutError: no answer within the tier's timeout of {timeout_s:g} s"
    text = f"{type(error).__name__}: {error}"
    if cause is FailureCause.NEVER_SENT:
        text += f" ({never_sent_detail(error, tier, public_url(endpoint))})"
    return text.replace(endpoint, public_url(endpoint))[:500]


def progress(site: CallSite, rec: Mapping[str, Any], ledger: Ledger) -> dict[str, Any]:
    """The ``model_call`` stream event of a finished call."""
    return {
        "event": StreamEvent.MODEL_CALL.value,
        "node": site.node,
        "subagent": site.subagent,
        "tier": rec["tier"],
        "model": rec["model"],
        "tokens": rec["input_tokens"] + rec["output_tokens"],
        "cost_usd": rec["cost_usd"],
        "spent_usd": ledger.spent_usd,
        "budget_usd": ledger.budget_usd,
        "latency_s": rec["latency_s"],
    }
