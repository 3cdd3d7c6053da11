"""The protocol's names in one place: node names, statuses, reasons, interrupt and event kinds.

They are ``StrEnum`` members, so they compare equal to (and serialize as) their plain string
values in checkpointed state, interrupts and streamed events.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Node",
    "RunStatus",
    "TaskStatus",
    "EscalationReason",
    "InterruptKind",
    "EventKind",
    "BudgetAction",
    "ReviewAction",
    "StreamEvent",
    "ToolName",
    "FailureCause",
    "PHASE_EDGES",
    "SUBAGENT_NODE",
]


class Node(StrEnum):
    """Node names the engine's graphs share."""

    BEGIN = "begin"
    SUPERVISOR = "supervisor"
    ANSWER = "answer"
    STEP = "step"
    TOOLS = "tools"
    ESCALATE = "escalate"
    REVIEW = "review"  # a human decides on an unverified answer
    ROUTE = "route"  # picks a routed task's first tier (a calibrated router, or the policy)
    VERIFY = "verify"  # checks a cascade's answer; a rejection climbs to the next tier


class RunStatus(StrEnum):
    """How a run ended (``status`` in a graph's output)."""

    RUNNING = "running"
    ANSWERED = "answered"
    UNVERIFIED = "unverified"  # an answer exists but its checks still failed after a repair
    REJECTED = "rejected"  # a human refused to approve the answer
    STOPPED = "stopped"  # a human chose "stop" at the budget gate
    BUDGET_EXHAUSTED = "budget_exhausted"  # an unattended budget stop; finished work is kept
    FAILED = "failed"
    DONE = "done"


class TaskStatus(StrEnum):
    """How one subagent task ended."""

    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    BUDGET_EXHAUSTED = "budget_exhausted"


class EscalationReason(StrEnum):
    """Why a task climbed the tier ladder."""

    ERROR = "error"
    SCHEMA_VALIDATION = "schema_validation"
    VERIFIER_REJECTED = "verifier_rejected"
    LOOP_DETECTED = "loop_detected"


class InterruptKind(StrEnum):
    """The ``kind`` of an interrupt payload."""

    BUDGET = "budget"
    ESCALATION = "escalation"
    DRAFT_REVIEW = "draft_review"
    ANSWER_REVIEW = "answer_review"  # an unverified answer in an attended run


class EventKind(StrEnum):
    """The ``kind`` of a timeline event in ``state["events"]``."""

    ESCALATION = "escalation"
    HUMAN_DECISION = "human_decision"
    TASK_FINISHED = "task_finished"
    DRAFT_REVIEW = "draft_review"
    LOOP_DETECTED = "loop_detected"
    TURN_LIMIT = "turn_limit"
    DEFERRED = "deferred"
    SUPERVISOR_FALLBACK = "supervisor_fallback"
    ERROR = "error"
    BUDGET = "budget"
    SHORTCUT = "shortcut"  # a task finished from deterministic evidence, with no model call
    ROUTED = "routed"  # a task's first tier was chosen (by which policy, router, calibration)
    VERIFIED = "verified"  # a verifier's verdict on one answer


class BudgetAction(StrEnum):
    """Answers to a budget interrupt, and the declared unattended budget policies."""

    RAISE = "raise"
    CHEAPER = "cheaper"
    STOP = "stop"


class ReviewAction(StrEnum):
    """Answers to a review or escalation interrupt."""

    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"


class StreamEvent(StrEnum):
    """The ``event`` of a live progress dict (``on_event`` callbacks, the CLI's stage lines)."""

    MODEL_CALL = "model_call"  # one model request finished (tier, model, tokens, cost)
    MODEL_ERROR = "model_error"  # one attempt failed and is retried or escalated
    TOOL_CALL = "tool_call"  # one tool call finished
    ENDPOINT_SKIPPED = "endpoint_skipped"  # an endpoint's circuit breaker is open
    NODE_DONE = "node_done"  # a graph node finished a step


class FailureCause(StrEnum):
    """Why a request attempt failed (``cause`` in its usage record); only one kind is billed."""

    NEVER_SENT = "never sent"  # no connection: refused, DNS, TLS, connect timeout ($0)
    ERROR_STATUS = "error status"  # the server answered 429, 5xx or another 4xx ($0)
    # Timed out after it was sent, or the connection dropped mid-reply: the provider may
    # have done the work, so the reservation is charged (billing "estimated").
    POSSIBLY_PROCESSED = "possibly processed"
    OTHER = "other"  # not a transport failure (an unreadable body, a bad argument) ($0)
    # Charged at the reservation too (billing "estimated"); the run's ledger keeps these
    # records, since no node's update carries them: the attempt was cancelled after it was
    # sent (a sibling failed, the run was cancelled), or its process died with it in flight.
    CANCELLED_AFTER_SEND = "cancelled after send"
    DIED_AFTER_SEND = "process died after send"


class ToolName(StrEnum):
    """Names of the schema tools the engine offers models (what a reply's tool call names)."""

    DECIDE = "decide"  # the supervisor's structured decision
    ANSWER = "final_answer"  # the supervisor's final answer
    FINISH = "finish"  # a subagent's result
    NEXT_ACTION = "next_action"  # a forced-mode subagent's one action (a tool call or finish)


# How a subagent task moves between its phases, for pictures of a graph (``tierflow graph``,
# the run view): (from, to, conditional); "" is the task's entry or its end.
PHASE_EDGES: tuple[tuple[str, str, bool], ...] = (
    ("", Node.STEP, False),
    (Node.STEP, Node.TOOLS, True),
    (Node.STEP, Node.STEP, True),
    (Node.STEP, Node.ESCALATE, True),
    (Node.TOOLS, Node.STEP, False),
    (Node.ESCALATE, Node.STEP, True),
    (Node.STEP, "", True),
    (Node.ESCALATE, "", True),
)
# Node metadata that marks a subagent node (pictures draw its phases inside it).
SUBAGENT_NODE: dict[str, str] = {"tierflow_kind": "subagent"}
