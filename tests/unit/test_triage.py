"""Triage graph: tier routing, parallel subagents, draft reviews, escalation, carried failures."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, RetryPolicy

from tierflow.graphs.triage import (
    InvalidTicketError,
    Ticket,
    TicketFields,
    build,
    graph,
    verify_fields,
)
from tierflow.runtime import RunContext
from tierflow.testing import Rule, ScriptedChatModel, tool_reply

TICKETS = [
    {
        "id": "t-001",
        "subject": "Charged twice",
        "body": "I was charged $49.99 twice for order ORD-1234 on my Pro plan. Please refund one.",
        "customer_email": "ann@example.com",
    },
    {
        "id": "t-002",
        "subject": "Dark mode?",
        "body": "Would be nice to have a dark mode in the dashboard.",
        "customer_email": "bob@example.com",
    },
    {
        "id": "t-003",
        "subject": "Everything is down",
        "body": "The API returns 503 for every request since 9am. Our shop is offline.",
        "customer_email": "cy@example.com",
    },
    {
        "id": "t-004",
        "subject": "Export is wrong",
        "body": "CSV exports drop rows with unicode names, only in some workspaces.",
        "customer_email": "dee@example.com",
    },
]

LABELS = {
    "t-001": {"category": "billing", "urgency": "high", "complex": False},
    "t-002": {"category": "feature_request", "urgency": "low", "complex": False},
    "t-003": {"category": "outage", "urgency": "critical", "complex": False},
    "t-004": {"category": "bug", "urgency": "medium", "complex": True},
}


def fields(ticket_id: str, order_id: str | None = None, amount: float | None = None) -> Any:
    email = next(t["customer_email"] for t in TICKETS if t["id"] == ticket_id)
    return {"order_id": order_id, "amount_usd": amount, "product": None, "customer_email": email}


FIELDS = {
    "t-001": fields("t-001", "ORD-1234", 49.99),
    "t-002": fields("t-002"),
    "t-003": fields("t-003"),
    "t-004": fields("t-004"),
}


DRAFTED = ("t-001", "t-003", "t-004")  # high, critical, complex


def draft_of(ticket_id: str) -> dict[str, str]:
    return {"subject": f"Re: {ticket_id}", "body": f"We are on it ({ticket_id})."}


def opening(messages: list[BaseMessage]) -> str:
    """The subagent's task message (system prompt first, then the task)."""
    return str(messages[1].content)


def task_is(schema: str, ticket_id: str) -> Any:
    """Match requests of one subagent task: its task schema and its ticket id."""
    return lambda messages: (
        opening(messages).startswith(f"Task ({schema})")
        and f'"id": "{ticket_id}"' in opening(messages)
    )


def finish(schema: str, ticket_id: str, args: dict[str, Any]) -> Rule:
    return Rule(task_is(schema, ticket_id), tool_reply("finish", args))


def ticket_ids(model: ScriptedChatModel) -> list[str]:
    """Which tickets a model saw, one entry per request."""
    found = []
    for request in model.requests:
        found += [t["id"] for t in TICKETS if f'"id": "{t["id"]}"' in opening(request.messages)]
    return sorted(found)


def scripted(label: str, *script: Any) -> ScriptedChatModel:
    return ScriptedChatModel(label=label, script=list(script))


def context(models: dict[str, ScriptedChatModel], profile: str = "local") -> RunContext:
    retry = RetryPolicy(initial_interval=0, jitter=False, max_attempts=2)
    return RunContext(profile=profile, models=models, retry=retry)


def thread() -> dict[str, Any]:
    # Budget ledgers are per thread id and process wide: every test gets a fresh thread.
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


async def answer(g: Any, cfg: dict[str, Any], ctx: RunContext, answers: dict[str, Any]) -> Any:
    """Resume pending interrupts by id."""
    return await g.ainvoke(Command(resume=answers), cfg, context=ctx)


async def pending(g: Any, cfg: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Pending interrupts by (kind, ticket id, task id or interrupt id)."""
    out = {}
    for item in (await g.aget_state(cfg)).interrupts:
        key = item.value.get("ticket_id") or item.value.get("task_id") or item.id
        out[(item.value["kind"], key)] = item
    return out


def assert_usage(state: dict[str, Any], models: dict[str, ScriptedChatModel]) -> None:
    """One usage record per request, on the tier of the model that served it."""
    by_tier = Counter(r["tier"] for r in state["usage"])
    assert by_tier == Counter({tier: len(m.requests) for tier, m in models.items() if m.requests})
    assert all(
        r["task_id"] and r["node"] in ("classify", "extract", "draft") for r in state["usage"]
    )


async def test_batch_routes_by_tier_and_reviews_each_draft(saver) -> None:
    nano = scripted("nano", *(finish("Ticket", i, LABELS[i]) for i in LABELS))
    mini = scripted("mini", *(finish("Ticket", i, FIELDS[i]) for i in FIELDS))
    flagship = scripted("flagship", *(finish("DraftTask", i, draft_of(i)) for i in DRAFTED))
    models = {"nano": nano, "mini": mini, "flagship": flagship}
    g, cfg, ctx = build().compile(checkpointer=saver), thread(), context(models)

    first = await g.ainvoke({"tickets": TICKETS[::-1], "budget_usd": None}, cfg, context=ctx)

    assert "tickets_out" not in first
    waiting = await pending(g, cfg)
    assert set(waiting) == {("draft_review", t) for t in DRAFTED}
    assert waiting[("draft_review", "t-001")].value["draft"] == draft_of("t-001")
    assert waiting[("draft_review", "t-001")].value["options"] == ["approve", "edit", "reject"]
    # Only urgent or complex tickets reach the flagship; every ticket is classified and extracted.
    assert ticket_ids(nano) == ticket_ids(mini) == ["t-001", "t-002", "t-003", "t-004"]
    assert ticket_ids(flagship) == list(DRAFTED)
    assert {r.tool_names[0] for m in models.values() for r in m.requests} == {"finish"}
    draft_task = opening(flagship.requests[0].messages)
    assert '"classification"' in draft_task and '"fields"' in draft_task

    edited = {"subject": "Re: outage", "body": "Service is restored; a credit follows."}
    resume = {
        waiting[("draft_review", "t-001")].id: {"action": "approve"},
        waiting[("draft_review", "t-003")].id: {"action": "edit", "value": edited},
        waiting[("draft_review", "t-004")].id: {"action": "reject", "note": "needs engineering"},
    }
    out = await answer(g, cfg, ctx, resume)

    assert list(out["tickets_out"]) == ["t-001", "t-002", "t-003", "t-004"]
    status = {i: t["status"] for i, t in out["tickets_out"].items()}
    assert status == {
        "t-001": "sent",
        "t-002": "no_reply_needed",
        "t-003": "sent",
        "t-004": "rejected",
    }
    t1, t2, t3, t4 = out["tickets_out"].values()
    assert t1["draft"] == draft_of("t-001") and t1["fields"] == FIELDS["t-001"]
    assert t1["classification"] == LABELS["t-001"]
    assert t2["draft"] is None and t2["classification"] == LABELS["t-002"]
    assert t3["draft"] == edited
    assert t4["note"] == "needs engineering"
    assert sorted(out["results"]) == sorted(
        [f"{s}:{i}" for s in ("classify", "extract") for i in LABELS]
        + [f"draft:{i}" for i in DRAFTED]
    )
    assert out["results"]["draft:t-003"]["tier"] == "flagship"
    reviews = {e["ticket_id"]: e["decision"] for e in out["events"] if e["kind"] == "draft_review"}
    assert reviews == {"t-001": "approve", "t-003": "edit", "t-004": "reject"}
    assert_usage(out, models)
    assert Counter((r["node"], r["tier"]) for r in out["usage"]) == Counter(
        {("classify", "nano"): 4, ("extract", "mini"): 4, ("draft", "flagship"): 3}
    )
    for model in models.values():
        model.assert_complete()


async def test_hallucinated_order_id_escalates_extract_to_flagship(saver) -> None:
    ticket = TICKETS[0]
    low = {"category": "billing", "urgency": "low", "complex": False}
    nano = scripted("nano", finish("Ticket", "t-001", low))
    mini = scripted("mini", finish("Ticket", "t-001", fields("t-001", "ORD-9999", 49.99)))
    flagship = scripted("flagship", finish("Ticket", "t-001", FIELDS["t-001"]))
    models = {"nano": nano, "mini": mini, "flagship": flagship}
    g, cfg = build().compile(checkpointer=saver), thread()

    out = await g.ainvoke({"tickets": [ticket]}, cfg, context=context(models))

    result = out["results"]["extract:t-001"]
    assert result["status"] == "done" and result["tier"] == "flagship"
    assert [(e["from"], e["to"], e["reason"]) for e in result["escalations"]] == [
        ("mini", "flagship", "verifier_rejected")
    ]
    assert "ORD-9999" in result["escalations"][0]["detail"]
    assert out["tickets_out"]["t-001"]["fields"] == FIELDS["t-001"]
    assert out["tickets_out"]["t-001"]["status"] == "no_reply_needed"
    # The flagship continues the mini's transcript, verifier's reason included.
    assert any("rejected by the verifier" in str(m.content) for m in flagship.requests[0].messages)
    extract_usage = [
        (r["tier"], r["escalation_reason"]) for r in out["usage"] if r["node"] == "extract"
    ]
    assert extract_usage == [("mini", None), ("flagship", "verifier_rejected")]
    assert_usage(out, models)
    for model in models.values():
        model.assert_complete()


@pytest.mark.parametrize(
    ("out", "problem"),
    [
        (fields("t-001", "ORD-1234", 49.99), None),
        (fields("t-001", None, None), None),
        (fields("t-001", "ORD-12", None), None),  # verbatim substring: allowed
        (fields("t-001", "ord-1234", None), "order_id 'ord-1234'"),
        (fields("t-001", "ORD-1234", 50.0), "amount_usd 50.0"),
    ],
)
def test_verifier_accepts_only_what_the_ticket_states(
    out: dict[str, Any], problem: str | None
) -> None:
    reason = verify_fields(Ticket(**TICKETS[0]), TicketFields(**out), {})
    assert (reason is None) if problem is None else (problem in str(reason))


def test_verifier_reads_amounts_with_thousands_separators() -> None:
    ticket = Ticket(**{**TICKETS[0], "body": "Invoice of $1,200 for order A-7 was wrong."})
    assert verify_fields(ticket, TicketFields(**fields("t-001", "A-7", 1200)), {}) is None


@pytest.mark.parametrize(
    ("tickets", "match"),
    [
        (
            [TICKETS[0], {k: v for k, v in TICKETS[1].items() if k != "customer_email"}],
            r"tickets\[1\]: customer_email: Field required",
        ),
        (
            [{**TICKETS[0], "customer_email": "not-an-email"}],
            r"tickets\[0\]: customer_email: .*not an email address",
        ),
        (
            [TICKETS[0], {**TICKETS[1], "id": "t-001"}],
            r"tickets\[1\]: id 't-001' is already used by tickets\[0\]",
        ),
        (
            [TICKETS[0], "just text"],
            r"tickets\[1\]: \(ticket\): Input should be a valid dictionary",
        ),
        ("t-001", r"tickets: expected a list of tickets, got str"),
    ],
)
async def test_bad_ticket_is_refused_before_any_model_call(tickets: Any, match: str) -> None:
    models = {t: scripted(t) for t in ("nano", "mini", "flagship")}
    g = build().compile(checkpointer=InMemorySaver())

    with pytest.raises(InvalidTicketError, match=match) as caught:
        await g.ainvoke({"tickets": tickets}, thread(), context=context(models))

    assert isinstance(caught.value, ValueError)
    assert "Each ticket needs 'id', 'subject', 'body' and 'customer_email'" in str(caught.value)
    assert not any(m.requests for m in models.values())


async def test_failed_extract_is_carried_and_other_tickets_finish(saver) -> None:
    boom = ValueError("400 bad request")  # not transient: escalates without retries
    nano = scripted("nano", *(finish("Ticket", i, LABELS[i]) for i in ("t-001", "t-003")))
    mini = scripted(
        "mini", finish("Ticket", "t-001", FIELDS["t-001"]), Rule(task_is("Ticket", "t-003"), boom)
    )
    flagship = scripted(
        "flagship",
        Rule(task_is("Ticket", "t-003"), boom),
        finish("DraftTask", "t-001", draft_of("t-001")),
    )
    models = {"nano": nano, "mini": mini, "flagship": flagship}
    g, cfg, ctx = build().compile(checkpointer=saver), thread(), context(models)

    await g.ainvoke({"tickets": [TICKETS[0], TICKETS[2]]}, cfg, context=ctx)
    waiting = await pending(g, cfg)
    assert set(waiting) == {("escalation", "extract:t-003")}
    await answer(g, cfg, ctx, {waiting[("escalation", "extract:t-003")].id: "reject"})
    waiting = await pending(g, cfg)
    assert set(waiting) == {("draft_review", "t-001")}  # no draft for the failed ticket
    out = await answer(g, cfg, ctx, {waiting[("draft_review", "t-001")].id: "approve"})

    t1, t3 = out["tickets_out"]["t-001"], out["tickets_out"]["t-003"]
    assert t1["status"] == "sent" and t1["draft"] == draft_of("t-001")
    assert t3["status"] == "failed" and t3["error"].startswith("extract:t-003: ")
    assert t3["classification"] == LABELS["t-003"] and t3["fields"] is None and t3["draft"] is None
    assert out["results"]["extract:t-003"]["status"] == "failed"
    failed = [r for r in out["usage"] if r["task_id"] == "extract:t-003"]
    assert [(r["tier"], r["error"] is not None) for r in failed] == [
        ("mini", True),
        ("flagship", True),
    ]
    assert_usage(out, models)
    for model in models.values():
        model.assert_complete()


async def test_tier_escalated_after_an_error_still_sees_the_ticket(saver) -> None:
    low = {"category": "billing", "urgency": "low", "complex": False}
    nano = scripted("nano", finish("Ticket", "t-001", low))
    mini = scripted("mini", ValueError("400 bad request"))
    flagship = scripted("flagship", tool_reply("finish", FIELDS["t-001"]))
    models = {"nano": nano, "mini": mini, "flagship": flagship}
    g = build().compile(checkpointer=saver)

    out = await g.ainvoke({"tickets": [TICKETS[0]]}, thread(), context=context(models))

    assert out["tickets_out"]["t-001"]["fields"] == FIELDS["t-001"]
    escalations = out["results"]["extract:t-001"]["escalations"]
    assert [(e["from"], e["to"], e["reason"]) for e in escalations] == [
        ("mini", "flagship", "error")
    ]
    # The flagship gets the task itself, not only the escalation note.
    assert task_is("Ticket", "t-001")(flagship.requests[0].messages)
    assert_usage(out, models)
    for model in models.values():
        model.assert_complete()


# A nano request fits (its useful minimum is ~$0.0003), a mini one (~$0.001) does not once
# the nano requests have settled.
TIGHT = 0.0009


async def test_budget_stop_is_carried_as_stopped_and_keeps_finished_work(saver) -> None:
    # Priced profile: a nano call fits the budget, a mini call's worst case does not.
    nano = scripted("nano", *(finish("Ticket", i, LABELS[i]) for i in ("t-001", "t-002")))
    models = {"nano": nano, "mini": scripted("mini"), "flagship": scripted("flagship")}
    g, cfg, ctx = build().compile(checkpointer=saver), thread(), context(models, "openai")

    await g.ainvoke({"tickets": TICKETS[:2], "budget_usd": TIGHT}, cfg, context=ctx)
    waiting = await pending(g, cfg)
    assert [kind for kind, _ in waiting] == ["budget", "budget"]
    assert {i.value["tier"] for i in waiting.values()} == {"mini"}
    out = await answer(g, cfg, ctx, {i.id: {"action": "stop"} for i in waiting.values()})

    for ticket_id in ("t-001", "t-002"):
        outcome = out["tickets_out"][ticket_id]
        assert outcome["status"] == "stopped"
        assert outcome["error"] == f"extract:{ticket_id}: stopped at the budget gate by a human"
        assert outcome["classification"] == LABELS[ticket_id]  # the nano's paid work is kept
    assert not models["flagship"].requests and not models["mini"].requests
    assert_usage(out, models)
    nano.assert_complete()


async def test_invalid_review_answers_are_asked_again_with_the_error(saver) -> None:
    nano = scripted("nano", finish("Ticket", "t-003", LABELS["t-003"]))
    mini = scripted("mini", finish("Ticket", "t-003", FIELDS["t-003"]))
    flagship = scripted("flagship", finish("DraftTask", "t-003", draft_of("t-003")))
    models = {"nano": nano, "mini": mini, "flagship": flagship}
    g, cfg, ctx = build().compile(checkpointer=saver), thread(), context(models)
    await g.ainvoke({"tickets": [TICKETS[2]]}, cfg, context=ctx)
    first = (await pending(g, cfg))[("draft_review", "t-003")]
    assert first.value["error"] is None

    bad_edit = {"action": "edit", "value": {"subject": "Re: outage"}}
    await answer(g, cfg, ctx, {first.id: bad_edit})
    second = (await pending(g, cfg))[("draft_review", "t-003")]
    assert second.id != first.id
    assert "t-003: the edited value is not a Draft (body: Field required)" in second.value["error"]
    assert second.value["question"].startswith(second.value["error"])

    await answer(g, cfg, ctx, {second.id: "send it"})
    third = (await pending(g, cfg))[("draft_review", "t-003")]
    assert "answered with {'action': 'send it'}" in third.value["error"]

    good = {"subject": "Re: outage", "body": "We are back up."}
    out = await answer(g, cfg, ctx, {third.id: {"action": "edit", "value": good}})
    assert out["tickets_out"]["t-003"] == {
        "classification": LABELS["t-003"],
        "fields": FIELDS["t-003"],
        "draft": good,
        "status": "sent",
        "error": None,
        "note": None,
        "delivery": None,  # no outbox in this run's input: approved in the state only
    }
    assert [e["decision"] for e in out["events"] if e["kind"] == "draft_review"] == ["edit"]
    for model in models.values():
        model.assert_complete()


def test_module_graph_is_compiled_without_checkpointer() -> None:
    assert graph.name == "triage" and graph.checkpointer is None
    assert set(graph.get_input_jsonschema()["properties"]) == {"tickets", "budget_usd", "outbox"}
    assert "tickets_out" in graph.get_output_jsonschema()["properties"]
