"""What a ledger hold is for, and the usage record it becomes when it is taken as spend.

A hold is the reservation of one request in flight, written before the request is sent. When
it can no longer settle (its process died, or it was still held when the run's drive ended:
cancelled in flight), the ledger takes it as spend at its reservation, ``billing:
"estimated"``: the provider may have processed it. No node's update will carry a record of
it, so the ledger keeps the one built here, and the Runner shows it with the run's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tierflow.config import TierSpec, public_url
from tierflow.protocol import FailureCause

if TYPE_CHECKING:
    from tierflow._call import CallSite

__all__ = ["HOLD_PREFIX", "held_record", "hold_label", "hold_cause"]

# A taken hold's charge and record share this id: ``hold:<call id>``, so each counts once.
HOLD_PREFIX = "hold:"

_WHY = {
    FailureCause.DIED_AFTER_SEND: "the process died with this request in flight (reserved, "
    "maybe sent, its reply never checkpointed); charged at its reservation",
    FailureCause.CANCELLED_AFTER_SEND: "cancelled in flight (after it was sent, or still held "
    "when the run's drive ended); charged at its reservation",
}


def hold_label(site: CallSite, spec: TierSpec, endpoint: str, model: str) -> dict[str, Any]:
    """The fields of the record a hold of ``site`` on ``spec`` becomes if it is taken."""
    return {
        "node": site.node,
        "subagent": site.subagent,
        "task_id": site.task_id,
        "tier": spec.name,
        "model": model,
        "endpoint": public_url(endpoint),
        "reasoning_effort": spec.reasoning_effort,
        "service_tier": spec.service_tier,
        "escalation_reason": site.escalation_reason,
    }


def hold_cause(owner: str, pid: int) -> FailureCause:
    """Why a hold made by ``owner`` (``"<pid>-<hex>"``) is taken by process ``pid``."""
    same = owner.partition("-")[0] == str(pid)
    return FailureCause.CANCELLED_AFTER_SEND if same else FailureCause.DIED_AFTER_SEND


def held_record(
    label: Mapping[str, Any],
    call_id: str,
    usd: float,
    cause: FailureCause,
    run_id: str | None,
    at: float | None,
) -> dict[str, Any]:
    """The usage record of a hold taken as spend (every UsageRecord field set)."""
    return dict(
        id=f"{HOLD_PREFIX}{call_id}",
        node=str(label.get("node") or "unknown"),
        subagent=label.get("subagent"),
        task_id=label.get("task_id"),
        tier=str(label.get("tier") or "unknown"),
        model=str(label.get("model") or "unknown"),
        endpoint=str(label.get("endpoint") or ""),
        reasoning_effort=label.get("reasoning_effort"),
        service_tier=label.get("service_tier"),
        input_tokens=0,
        cached_tokens=0,
        output_tokens=0,
        latency_s=0.0,
        cost_usd=float(usd),
        billing="estimated",
        error=_WHY.get(cause, cause.value),
        cause=cause.value,
        escalation_reason=label.get("escalation_reason"),
        started_at=round(float(at or 0.0), 4),  # when the hold was made
        run_id=run_id,
        cached_response=False,
    )
