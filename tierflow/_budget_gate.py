"""The budget gate: reserve a call's worst case, else ask a human, stop or step down a tier."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.types import interrupt

from tierflow._call import CallSite
from tierflow._holds import hold_label
from tierflow.budget import MIN_OUTPUT_TOKENS, Ledger, Reservation
from tierflow.config import TierSpec
from tierflow.errors import InputError
from tierflow.protocol import BudgetAction, InterruptKind, RunStatus
from tierflow.runtime import Engine
from tierflow.tiers import TierPolicy, step_down

__all__ = ["BUDGET_OPTIONS", "Gate", "budget_gate"]

BUDGET_OPTIONS = tuple(a.value for a in BudgetAction)

# How often a reservation that did not fit is tried again while sibling requests settle.
_SETTLE_POLL_S = 0.01


@dataclass
class Gate:
    """What the budget gate decided before the first request."""

    tier: str
    reservation: Reservation | None
    budget_usd: float | None = None
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)


async def budget_gate(
    engine: Engine,
    site: CallSite,
    ledger: Ledger,
    policy: TierPolicy,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
) -> Gate:
    """Reserve the call's worst case, or apply the budget policy (ask a human, stop, step down)."""
    gate = Gate(site.tier, None)
    problem: str | None = None
    while True:
        spec = engine.config.tier(gate.tier)
        gate.reservation = await _reserve(
            ledger, spec, messages, tools, _hold_for(engine, site, spec)
        )
        if gate.reservation is not None:
            return gate
        action = policy.budget_action()
        if action is not None:
            return await _unattended_step(engine, site, gate, action, ledger, messages, tools)
        decision = interrupt(_budget_question(engine, site, gate.tier, ledger, problem))
        try:
            action, value = _parse_budget_decision(decision)
        except InputError as exc:
            # Ask again rather than raise: a raised resume value would be replayed forever.
            problem = str(exc)
            continue
        problem = None
        if action == BudgetAction.STOP:
            gate.notes.append("stopped at the budget gate by a human")
            gate.stopped = RunStatus.STOPPED.value
            return gate
        if action == BudgetAction.RAISE:
            gate.budget_usd = value
            ledger.raise_budget(value)
            gate.notes.append(f"budget raised to ${value:.6f}")
            continue
        cheaper = step_down(gate.tier, engine.config)
        if cheaper is None:
            gate.notes.append(f"no tier is cheaper than {gate.tier}; asking again")
        else:
            gate.notes.append(f"continuing on cheaper tier {cheaper} instead of {gate.tier}")
            gate.tier = cheaper


def _hold_for(engine: Engine, site: CallSite, spec: TierSpec) -> dict[str, Any]:
    """What a hold of ``site`` on ``spec`` is for: the record it becomes if it is taken."""
    first = next(iter(engine.endpoints(spec.name)), None)
    url = first.base_url if first is not None else spec.base_url
    model = (first.model if first is not None else None) or engine.model_name(spec.name)
    return hold_label(site, spec, url, model)


async def _reserve(
    ledger: Ledger,
    spec: TierSpec,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
    held_for: dict[str, Any],
) -> Reservation | None:
    """Reserve, waiting while sibling requests are in flight.

    In-flight requests usually cost far less than their reservations, so what is left is
    only known once they settle.
    """
    while (
        reservation := await ledger.areserve(spec, messages, tools, held_for)
    ) is None and ledger.in_flight:
        await asyncio.sleep(_SETTLE_POLL_S)
    return reservation


async def _unattended_step(
    engine: Engine,
    site: CallSite,
    gate: Gate,
    action: BudgetAction,
    ledger: Ledger,
    messages: Sequence[BaseMessage],
    tools: list[dict[str, Any]],
) -> Gate:
    """The declared budget policy: step down while a cheaper tier fits, else stop."""
    tier: str | None = gate.tier
    if action == BudgetAction.CHEAPER:
        while (tier := step_down(str(tier), engine.config)) is not None:
            spec = engine.config.tier(tier)
            gate.reservation = await ledger.areserve(
                spec, messages, tools, _hold_for(engine, site, spec)
            )
            if gate.reservation is not None:
                gate.notes.append(f"budget: continuing on tier {tier} instead of {gate.tier}")
                gate.tier = tier
                return gate
    gate.stopped = RunStatus.BUDGET_EXHAUSTED.value
    gate.notes.append(
        f"budget exhausted: ${ledger.spent_usd:.6f} of ${ledger.budget_usd or 0:.6f} spent; "
        f"the next {site.node} call on tier {gate.tier} does not fit"
    )
    return gate


def _budget_question(
    engine: Engine, site: CallSite, tier: str, ledger: Ledger, problem: str | None
) -> dict[str, Any]:
    remaining = ledger.remaining_usd() or 0.0
    return {
        "kind": InterruptKind.BUDGET.value,
        "error": problem,
        "task_id": site.task_id,
        "question": (
            f"The next call ({site.node}, tier {tier}) cannot fit in the budget left "
            f"(${remaining:.6f}; it needs room for its input and at least "
            f"{MIN_OUTPUT_TOKENS} output tokens); ${ledger.spent_usd:.6f} of "
            f"${ledger.budget_usd or 0:.6f} is spent."
        ),
        "node": site.node,
        "subagent": site.subagent,
        "tier": tier,
        "spent_usd": ledger.spent_usd,
        "budget_usd": ledger.budget_usd,
        "remaining_usd": remaining,
        "cheaper_tier": step_down(tier, engine.config),
        "options": list(BUDGET_OPTIONS),
        "resume_with": {"action": "raise|cheaper|stop", "budget_usd": "new total (raise)"},
    }


def _parse_budget_decision(decision: Any) -> tuple[BudgetAction, float]:
    if isinstance(decision, str):
        decision = {"action": decision}
    if not isinstance(decision, Mapping) or decision.get("action") not in BUDGET_OPTIONS:
        raise InputError(
            f"budget interrupt resumed with {decision!r}; resume with "
            "{'action': 'raise', 'budget_usd': 1.0}, {'action': 'cheaper'} or {'action': 'stop'}"
        )
    action = BudgetAction(str(decision["action"]))
    try:
        value = float(decision.get("budget_usd") or 0.0)
    except (TypeError, ValueError):
        raise InputError("'budget_usd' must be a number (the new total budget)") from None
    if action == BudgetAction.RAISE and value <= 0:
        raise InputError("a budget raise needs a positive 'budget_usd' (the new total)")
    return action, value
