"""Ticket triage's nodes: the ticket schemas, intake, fan-out routers, draft review and report.

The graph itself (subagent declarations and wiring) is :mod:`tierflow.graphs.triage`.
Stage names below are the subagent node names the graph declares.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from langgraph import func
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from tierflow.budget import begin_run, end_run, run_spent_usd
from tierflow.errors import InputError, TierflowError
from tierflow.nodes.human import ReviewDecision, ask_human, event
from tierflow.nodes.subagent import subagent_input
from tierflow.outbox import DeliveryError, deliver
from tierflow.protocol import EventKind, InterruptKind, ReviewAction, RunStatus, TaskStatus
from tierflow.runtime import RunContext, context_of
from tierflow.state import cleared

__all__ = [
    "Ticket",
    "Classification",
    "TicketFields",
    "DraftTask",
    "Draft",
    "TicketOutcome",
    "InvalidTicketError",
    "verify_fields",
    "intake",
    "route_intake",
    "route_drafts",
    "route_reviews",
    "join",
    "review",
    "report",
    "CLASSIFY_NAME",
    "EXTRACT_NAME",
    "DRAFT_NAME",
    "REVIEW",
    "REPORT",
]

CLASSIFY_NAME, EXTRACT_NAME, DRAFT_NAME = "classify", "extract", "draft"
REVIEW, REPORT = "review", "report"
_PIPELINE = (CLASSIFY_NAME, EXTRACT_NAME, DRAFT_NAME)

URGENT = ("high", "critical")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise InputError("is not an email address (expected name@domain.tld)")
    return value


class Ticket(BaseModel):
    """One support ticket as it arrives."""

    id: str = Field(min_length=1, description="unique ticket id, e.g. 't-001'")
    subject: str
    body: str = Field(min_length=1)
    customer_email: Annotated[str, AfterValidator(_email)]

    @property
    def text(self) -> str:
        """Subject and body: what the customer wrote."""
        return f"{self.subject}\n{self.body}"


class Classification(BaseModel):
    """What kind of ticket it is and how fast it needs an answer."""

    category: Literal["billing", "account", "bug", "outage", "feature_request", "security", "other"]
    urgency: Literal["low", "medium", "high", "critical"]
    complex: bool = Field(description="true when answering needs investigation or several steps")


class TicketFields(BaseModel):
    """Facts copied out of a ticket; anything not written in the ticket is null."""

    order_id: str | None = Field(description="order id exactly as written in the ticket, or null")
    amount_usd: float | None = Field(description="money amount written in the ticket, or null")
    product: str | None = Field(description="product or plan the ticket is about, or null")
    customer_email: str


class DraftTask(BaseModel):
    """What the drafter needs: the ticket and what the cheaper tiers found."""

    ticket: Ticket
    classification: Classification
    fields: TicketFields


class Draft(BaseModel):
    """A reply to the customer."""

    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)


class TicketOutcome(BaseModel):
    """One ticket in ``tickets_out``.

    Attributes:
        classification: the ``classify`` output (None when that task did not finish).
        fields: the ``extract`` output (None when that task did not finish).
        draft: the reply as sent (the human's edit, if any), the rejected proposal, or None.
        status: ``sent``/``rejected`` after review, ``no_reply_needed`` when no draft was due,
            ``stopped`` (a human stopped it at the budget gate), ``budget_exhausted`` (an
            unattended budget stop) or ``failed`` when one of its tasks did not finish.
        error: ``<task id>: <reason>`` when a task did not finish (or its delivery failed).
        note: the reviewer's note.
        delivery: the outbox's receipt of a sent reply (run input ``outbox``): its idempotency
            key ``<run id>:<ticket id>``, when, and whether the outbox had it already.
    """

    classification: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None
    draft: dict[str, Any] | None = None
    status: Literal["sent", "rejected", "no_reply_needed", "stopped", "budget_exhausted", "failed"]
    error: str | None = None
    note: str | None = None
    delivery: dict[str, Any] | None = None


class InvalidTicketError(TierflowError, ValueError):
    """The input's tickets do not validate; raised before any model call.

    Attributes:
        index: position of the offending ticket in ``tickets`` (None: the list itself).
        field: the first offending field, e.g. ``customer_email``.
    """

    def __init__(self, index: int | None, field: str, problem: str) -> None:
        self.index = index
        self.field = field
        self.problem = problem
        where = "tickets" if index is None else f"tickets[{index}]"
        super().__init__(
            f"invalid input at {where}: {problem}. Each ticket needs 'id', 'subject', 'body' "
            "and 'customer_email' (e.g. {'id': 't-001', 'subject': 'Refund', 'body': '...', "
            "'customer_email': 'ann@example.com'})"
        )


def verify_fields(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> str | None:
    """Reject an order id or amount that is not written in the ticket."""
    assert isinstance(task, Ticket) and isinstance(out, TicketFields)
    if out.order_id is not None and out.order_id not in task.text:
        return f"order_id {out.order_id!r} is not in the ticket; copy it exactly, or use null"
    if out.amount_usd is not None:
        numbers = {float(n.replace(",", "")) for n in _NUMBER.findall(task.text)}
        if not any(abs(n - out.amount_usd) < 0.005 for n in numbers):
            return (
                f"amount_usd {out.amount_usd} is not written in the ticket; use null when none is"
            )
    return None


def _problems(exc: ValidationError, root: str) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or root}: {e['msg']}" for e in exc.errors())


def _validate(raw: Any) -> list[Ticket]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidTicketError(
            None, "tickets", f"expected a list of tickets, got {type(raw).__name__}"
        )
    tickets: list[Ticket] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        try:
            ticket = Ticket.model_validate(item)
        except ValidationError as exc:
            field = ".".join(map(str, exc.errors()[0]["loc"])) or "(ticket)"
            raise InvalidTicketError(i, field, _problems(exc, "(ticket)")) from exc
        if ticket.id in seen:
            raise InvalidTicketError(
                i, "id", f"id {ticket.id!r} is already used by tickets[{seen[ticket.id]}]"
            )
        seen[ticket.id] = i
        tickets.append(ticket)
    return tickets


async def intake(state: Mapping[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Start a run: validate the tickets (:class:`InvalidTicketError` before any model call)."""
    tickets = [t.model_dump() for t in _validate(state.get("tickets"))]
    outbox = state.get("outbox")
    if outbox is not None and (not isinstance(outbox, str) or not outbox.strip()):
        raise TierflowError(
            f"invalid input at outbox: {outbox!r}; pass the path of a JSON-lines file or an "
            "http(s) URL that takes one POST per reply"
        )
    fresh = {"results": cleared(), "reviews": cleared()}  # a reused thread starts clean
    started = begin_run(state, context_of(runtime).budget_usd)
    return {**started, **fresh, "tickets": tickets, "status": RunStatus.RUNNING.value}


def _task_id(stage: str, ticket_id: str) -> str:
    return f"{stage}:{ticket_id}"


def _result(state: Mapping[str, Any], stage: str, ticket_id: str) -> dict[str, Any] | None:
    return (state.get("results") or {}).get(_task_id(stage, ticket_id))


def _done(state: Mapping[str, Any], stage: str, ticket_id: str) -> dict[str, Any] | None:
    result = _result(state, stage, ticket_id)
    return result["output"] if result and result["status"] == TaskStatus.DONE else None


async def route_intake(state: Mapping[str, Any]) -> Any:
    """Send each ticket to classify and extract side by side."""
    spent = run_spent_usd(state)
    sends = [
        Send(name, subagent_input(_task_id(name, t["id"]), t, state, spent_usd=spent))
        for t in state.get("tickets") or []
        for name in (CLASSIFY_NAME, EXTRACT_NAME)
    ]
    return sends or REPORT


def _needs_draft(classification: Mapping[str, Any]) -> bool:
    return classification["urgency"] in URGENT or bool(classification["complex"])


async def route_drafts(state: Mapping[str, Any]) -> Any:
    """Send each urgent or complex ticket whose classify and extract finished to draft."""
    spent = run_spent_usd(state)
    sends = []
    for ticket in state.get("tickets") or []:
        tid = ticket["id"]
        label, fields = _done(state, CLASSIFY_NAME, tid), _done(state, EXTRACT_NAME, tid)
        if label is None or fields is None or not _needs_draft(label):
            continue
        task = DraftTask.model_validate(
            {"ticket": ticket, "classification": label, "fields": fields}
        )
        payload = subagent_input(_task_id(DRAFT_NAME, tid), task, state, spent_usd=spent)
        sends.append(Send(DRAFT_NAME, payload))
    return sends or REPORT


async def route_reviews(state: Mapping[str, Any]) -> Any:
    """Send each finished draft to a human review."""
    sends = []
    for ticket in state.get("tickets") or []:
        draft = _done(state, DRAFT_NAME, ticket["id"])
        if draft is not None:
            label = _done(state, CLASSIFY_NAME, ticket["id"]) or {}
            task = {"ticket": ticket, "classification": label, "draft": draft}
            if state.get("outbox"):  # where an approved reply goes, keyed by run and ticket
                task |= {"outbox": state["outbox"], "run_id": state.get("run_id")}
            sends.append(Send(REVIEW, task))
    return sends or REPORT


def _ask_until_valid(
    ticket: Mapping[str, Any], draft: dict[str, Any], question: str
) -> tuple[ReviewDecision, dict[str, Any]]:
    problem: str | None = None
    while True:
        asked = f"{problem}\n{question}" if problem else question
        try:
            decision = ask_human(
                InterruptKind.DRAFT_REVIEW,
                asked,
                subject=("send_reply", draft),
                ticket_id=ticket["id"],
                draft=draft,
                ticket=ticket,
                error=problem,
            )
            if decision.action != ReviewAction.EDIT:
                return decision, draft
            return decision, Draft.model_validate(decision.value).model_dump()
        except ValidationError as exc:
            problem = (
                f"draft_review of ticket {ticket['id']}: the edited value is not a Draft "
                f"({_problems(exc, '(value)')}); resume with "
                "{'action': 'edit', 'value': {'subject': '...', 'body': '...'}}"
            )
        except ValueError as exc:  # not a decision at all (see ask_human)
            problem = f"draft_review of ticket {ticket['id']}: {exc}"


async def review(task: Any, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask a human to approve, edit or reject one draft (``task``: ticket, classification, draft).

    An answer that is not a decision, or an edit that is not a :class:`Draft`, is not raised:
    the node asks again with the problem in the new interrupt's ``error`` and question.
    Raising would leave the thread stuck, because LangGraph replays the stored bad answer on
    every later resume of the same interrupt.
    """
    ticket, label = task["ticket"], task["classification"]
    question = (
        f"Send this reply to {ticket['customer_email']} for ticket {ticket['id']} "
        f"({label.get('category')}, {label.get('urgency')} urgency): {ticket['subject']!r}? "
        "approve: send it; edit: send your version ({'subject': ..., 'body': ...}); "
        "reject: do not send it."
    )
    policy = context_of(runtime).policy
    if not policy.human:
        # Unattended runs (evals) have nobody to ask: the draft is approved as written.
        decision, sent = (
            ReviewDecision(
                action=ReviewAction.APPROVE.value, note=f"auto-approved ({policy.name})"
            ),
            task["draft"],
        )
    else:
        decision, sent = _ask_until_valid(ticket, task["draft"], question)
    status = "rejected" if decision.action == ReviewAction.REJECT else "sent"
    outcome = {"status": status, "draft": sent, "note": decision.note, "action": decision.action}
    if status == "sent" and task.get("outbox"):
        # A task: once it completed, a re-run of this node (resume, crash, another replica)
        # replays its receipt; the key lets the outbox drop a repeat the checkpoint missed.
        key = f"{task.get('run_id')}:{ticket['id']}"
        message = {"to": ticket["customer_email"], "ticket_id": ticket["id"], **sent}
        try:
            outcome["delivery"] = await _SEND(task["outbox"], key, message)
        except DeliveryError as exc:
            outcome |= {"status": "failed", "error": str(exc)}
            status = "failed"
    done = event(
        EventKind.DRAFT_REVIEW, ticket_id=ticket["id"], decision=decision.action, status=status
    )
    return {"reviews": {ticket["id"]: outcome}, "events": [done]}


_SEND: Any = func.task(name="send_reply")(deliver)  # type: ignore[arg-type]


def _outcome(state: Mapping[str, Any], ticket_id: str) -> TicketOutcome:
    parts: dict[str, Any] = {
        "classification": _done(state, CLASSIFY_NAME, ticket_id),
        "fields": _done(state, EXTRACT_NAME, ticket_id),
        "draft": _done(state, DRAFT_NAME, ticket_id),
    }
    for stage in _PIPELINE:
        result = _result(state, stage, ticket_id)
        if result and result["status"] != TaskStatus.DONE:
            error = f"{_task_id(stage, ticket_id)}: {result.get('error') or result['status']}"
            return TicketOutcome(**parts, status=result["status"], error=error)
    reviewed = (state.get("reviews") or {}).get(ticket_id)
    if reviewed is None:
        return TicketOutcome(**parts, status="no_reply_needed")
    return TicketOutcome(
        **{**parts, "draft": reviewed["draft"]},
        status=reviewed["status"],
        note=reviewed.get("note"),
        error=reviewed.get("error"),
        delivery=reviewed.get("delivery"),
    )


async def join(state: Mapping[str, Any]) -> dict[str, Any]:
    """Parallel branches meet here; the edge after it reads their merged results."""
    return {}


async def report(state: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble ``tickets_out`` (ordered by ticket id) and the run's status; end the run."""
    ids = sorted(t["id"] for t in state.get("tickets") or [])
    out = {i: _outcome(state, i).model_dump() for i in ids}
    exhausted = any(o["status"] == TaskStatus.BUDGET_EXHAUSTED for o in out.values())
    end_run(state)
    return {
        "tickets_out": out,
        "status": (RunStatus.BUDGET_EXHAUSTED if exhausted else RunStatus.DONE).value,
    }
