"""A supervisor run's state: its schemas, the pieces that travel in them, and how writes land."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from tierflow.budget import begin_run
from tierflow.protocol import RunStatus
from tierflow.state import EngineState, cleared, max_budget, merge_dict

__all__ = [
    "AnswerCheck",
    "Delegation",
    "Dispatch",
    "ReviewOutcome",
    "RetryTurn",
    "RunStatusName",
    "SupervisorInput",
    "SupervisorOutput",
    "SupervisorState",
    "after",
    "changes",
    "new_run",
]


class SupervisorInput(TypedDict, total=False):
    """What a user passes to start a run."""

    request: str
    env: dict[str, Any]
    budget_usd: Annotated[float | None, max_budget]


# unverified: an answer exists but still failed answer_verifier after its repair;
# budget_exhausted: an unattended budget stop; the answer (if any) uses the finished work
RunStatusName = Literal[
    "running", "answered", "unverified", "stopped", "budget_exhausted", "failed"
]


class SupervisorOutput(EngineState, total=False):
    """What a supervisor run returns: the answer, its status, the plans and each task's result."""

    answer: dict[str, Any] | None
    status: RunStatusName
    answer_problems: list[str]
    plans: list[str]
    results: Annotated[dict[str, Any], merge_dict]


class Delegation(TypedDict):
    """One task the supervisor asked for (or its fallback plan named): whom, and the task."""

    subagent: str
    task: dict[str, Any]


class Dispatch(Delegation):
    """A delegation on its way to its subagent, with the id its result is stored under."""

    task_id: str


class RetryTurn(TypedDict):
    """The whole dispatch of a turn whose decision was unusable: the supervisor decides again."""

    retry: Literal[True]


class SupervisorState(SupervisorOutput, SupervisorInput, total=False):
    """State of a supervisor run (checkpointed): the output plus the loop's counters."""

    turn: int
    delegated: list[str]
    # This turn's new delegations, or one RetryTurn alone (never mixed with delegations).
    dispatch: list[Dispatch | RetryTurn]
    repairs: int
    answer_retry: bool  # the answer failed its check once and is asked again
    answer_review: bool  # unverified in an attended run: a human decides what follows


class AnswerCheck(TypedDict, total=False):
    """What checking one final answer writes: a repair to ask for, or the run's answer."""

    answer: dict[str, Any]
    status: str  # a RunStatus value
    answer_problems: list[str]
    answer_retry: bool
    events: list[dict[str, Any]]


class ReviewOutcome(TypedDict, total=False):
    """What a human's review of the answer writes: the decision's event, status and answer."""

    answer_review: bool
    events: list[dict[str, Any]]
    status: str  # a RunStatus value
    answer: dict[str, Any]


# The supervisor's own fields: plain values (no reducer), overwritten by each write.
_PLAIN_FIELDS = frozenset(
    {"status", "turn", "plans", "delegated", "dispatch", "repairs", "answer", "answer_problems",
     "answer_retry", "answer_review"}
)  # fmt: skip


def changes(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` less the writes that change nothing.

    A plain field written with the value it holds (or an empty value where it has none), or
    an append of nothing, is dropped: every channel written is a row in a durable checkpointer.
    """
    out = {}
    for key, value in update.items():
        if key in _PLAIN_FIELDS:
            current = state.get(key)
            if current == value if key in state else not value:
                continue
        elif key in ("usage", "events") and not value:
            continue
        out[key] = value
    return out


def after(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The state a router sees once ``update`` is applied (usage appended, results merged)."""
    view = {**state, **update}
    if "usage" in update:
        view["usage"] = [*(state.get("usage") or []), *update["usage"]]
    if "results" in update:
        view["results"] = merge_dict(state.get("results"), update["results"])
    return view


_ENDED = {
    RunStatus.ANSWERED,
    RunStatus.REJECTED,
    RunStatus.UNVERIFIED,
    RunStatus.STOPPED,
    RunStatus.BUDGET_EXHAUSTED,
    RunStatus.FAILED,
}


def new_run(state: SupervisorState, budget_usd: float | None = None) -> dict[str, Any]:
    """The per-run fields to reset when the supervisor starts a new run, else nothing.

    The supervisor is entered from START only with new input; a thread whose last run ended
    (or a fresh thread) starts a new run: fresh run id (hence budget), turns and results.
    Doing this here rather than in a node of its own saves a super-step per run.
    """
    if state.get("run_id") and state.get("status") not in _ENDED:
        return {}
    return {
        **begin_run(state, budget_usd),
        "status": RunStatus.RUNNING.value,
        "turn": 0,
        "plans": [],
        "delegated": [],
        "dispatch": [],
        "repairs": 0,
        "answer": None,
        "answer_problems": [],
        "answer_retry": False,
        **({"results": cleared()} if state.get("results") else {}),
    }
