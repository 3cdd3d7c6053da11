"""Ticket triage: nano classifies, mini extracts, flagship drafts, a human reviews each draft.

Graph shape::

    START -> intake --(Send per ticket)--> classify + extract -> plan_drafts
          --(Send per urgent or complex ticket)--> draft -> plan_reviews
          --(Send per draft)--> review -> report -> END

Input: ``{"tickets": [{"id", "subject", "body", "customer_email"}, ...], "budget_usd": 0.05}``.
Output: ``tickets_out`` = ticket id -> ``{classification, fields, draft, status, error, note}``;
each subagent task's :class:`~tierflow.nodes.subagent.SubagentResult` is in ``results`` under
``classify:<id>``, ``extract:<id>`` and ``draft:<id>``. ``classify`` and ``extract`` only need
the ticket, so they run side by side; a ticket whose task stopped (budget) or failed goes no
further and reports that status with the error, while the other tickets carry on.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> g = build().compile(checkpointer=InMemorySaver())
    >>> sorted(n for n in g.get_graph().nodes if not n.startswith("__"))
    ['classify', 'draft', 'extract', 'intake', 'plan_drafts', 'plan_reviews', 'report', 'review']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from tierflow.graphs.triage.oracle import oracle
from tierflow.graphs.triage.suite import make_input, score
from tierflow.graphs.triage.tickets import (
    CLASSIFY_NAME,
    DRAFT_NAME,
    EXTRACT_NAME,
    REPORT,
    REVIEW,
    Classification,
    Draft,
    DraftTask,
    InvalidTicketError,
    Ticket,
    TicketFields,
    TicketOutcome,
    intake,
    join,
    report,
    review,
    route_drafts,
    route_intake,
    route_reviews,
    verify_fields,
)
from tierflow.graphspec import EvalSuite, GraphSpec, InputRules
from tierflow.nodes.subagent import SUBAGENT_NODE, Subagent, subagent_node
from tierflow.runtime import RunContext
from tierflow.state import EngineState, max_budget, merge_dict, merge_events
from tierflow.usage import merge_usage

NAME = "triage"  # the graph's name in langgraph.json, and its root run's in traces

__all__ = [
    "Ticket",
    "Classification",
    "TicketFields",
    "DraftTask",
    "Draft",
    "TicketOutcome",
    "InvalidTicketError",
    "TriageInput",
    "TriageOutput",
    "TriageState",
    "CLASSIFY",
    "EXTRACT",
    "DRAFT",
    "verify_fields",
    "build",
    "SPEC",
    "graph",
]

CLASSIFY = Subagent(
    name=CLASSIFY_NAME,
    description="labels a support ticket with a category, an urgency and whether it is complex",
    tier="nano",
    task_schema=Ticket,
    output_schema=Classification,
    prompt=(
        "You triage customer support tickets. Pick the category that fits best. Urgency: critical "
        "= service down or security breach for this customer now; high = blocked or charged "
        "wrongly; medium = degraded or confused; low = questions and wishes. complex = true when "
        "the answer needs investigation or several steps."
    ),
)

EXTRACT = Subagent(
    name=EXTRACT_NAME,
    description="copies the order id, amount, product and customer email out of a ticket",
    tier="mini",
    task_schema=Ticket,
    output_schema=TicketFields,
    prompt=(
        "Copy facts out of the support ticket. order_id is an order number written in the "
        "subject or body (like ORD-12345); the ticket's own id (like t-020) is NOT an order id. "
        "amount_usd is a money amount written in the text. Use null for anything the text does "
        "not state. Never guess. customer_email is the ticket's customer_email."
    ),
    verifier=verify_fields,
)

DRAFT = Subagent(
    name=DRAFT_NAME,
    description="writes a reply to an urgent or complex ticket for a human to review",
    tier="flagship",
    task_schema=DraftTask,
    output_schema=Draft,
    prompt=(
        "Write the support team's reply to the ticket. Be specific: use the classification and "
        "the extracted fields, say what happens next and when. Promise nothing the ticket does "
        "not support (no refunds or credits without an order id). Plain text, under 150 words."
    ),
)


# Input and output use typing_extensions.TypedDict so pydantic can render their JSON schemas
# on Python 3.11 (LangGraph Server shows them); the state mixes in the engine's keys.
class TriageInput(TypedDict, total=False):
    """What a caller passes to start a run."""

    tickets: list[dict[str, Any]]
    budget_usd: Annotated[float | None, max_budget]
    # Where approved replies are delivered, once each: a JSON-lines file or an http(s) URL
    # (see tierflow.outbox). Without it, a reply is approved in the state only.
    outbox: str


class TriageOutput(TypedDict, total=False):
    """What a finished run returns."""

    tickets_out: dict[str, Any]
    status: Literal["running", "done", "budget_exhausted"]
    run_id: str  # the usage records of this run carry it (a thread keeps every run's records)
    results: Annotated[dict[str, Any], merge_dict]
    usage: Annotated[list[dict[str, Any]], merge_usage]
    events: Annotated[list[dict[str, Any]], merge_events]
    budget_usd: Annotated[float | None, max_budget]


class TriageState(EngineState, total=False):
    """State of a triage run (checkpointed)."""

    tickets: list[dict[str, Any]]
    outbox: str
    results: Annotated[dict[str, Any], merge_dict]
    reviews: Annotated[dict[str, Any], merge_dict]
    tickets_out: dict[str, Any]
    status: Literal["running", "done", "budget_exhausted"]


def build() -> StateGraph[TriageState, RunContext, TriageInput, TriageOutput]:
    """Uncompiled triage graph (choose the checkpointer at compile time; reviews need one)."""
    builder = StateGraph(
        TriageState, input_schema=TriageInput, output_schema=TriageOutput, context_schema=RunContext
    )
    builder.add_node("intake", intake)
    for spec in (CLASSIFY, EXTRACT, DRAFT):
        builder.add_node(spec.name, subagent_node(spec, NAME), metadata=SUBAGENT_NODE)
    builder.add_node("plan_drafts", join)
    builder.add_node("plan_reviews", join)
    # review gets a Send payload, not the state; LangGraph's stubs only type state-shaped inputs.
    builder.add_node(REVIEW, review)  # type: ignore[arg-type]
    builder.add_node(REPORT, report)
    builder.add_edge(START, "intake")
    builder.add_conditional_edges("intake", route_intake, [CLASSIFY.name, EXTRACT.name, "report"])
    builder.add_edge(CLASSIFY.name, "plan_drafts")
    builder.add_edge(EXTRACT.name, "plan_drafts")
    builder.add_conditional_edges("plan_drafts", route_drafts, [DRAFT.name, "report"])
    builder.add_edge(DRAFT.name, "plan_reviews")
    builder.add_conditional_edges("plan_reviews", route_reviews, ["review", "report"])
    builder.add_edge("review", "report")
    builder.add_edge("report", END)
    return builder


SPEC = GraphSpec(
    name=NAME,
    build=build,
    inputs=InputRules(list_key="tickets"),  # a .jsonl file of tickets is one run
    suite=EvalSuite(dataset="triage.jsonl", make_input=make_input, score=score, oracle=oracle),
)
graph = SPEC.compile()
