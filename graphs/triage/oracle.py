"""TEST DOUBLE: triage's scripted oracle, answering each subagent from the ticket's reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from tierflow.oracle import finish, right, task_of

__all__ = ["oracle"]

_CATEGORIES = ["billing", "account", "bug", "outage", "feature_request", "security", "other"]


def oracle(
    items: list[dict[str, Any]], tier: str, accuracy: Mapping[str, float]
) -> Callable[[list[BaseMessage]], AIMessage]:
    """A responder for ``tier``: classify, extract and draft replies from the reference."""
    by_id = {i["id"]: i for i in items}

    def respond(messages: list[BaseMessage]) -> AIMessage:
        schema, task = task_of(messages)
        ticket_id = task["ticket"]["id"] if schema == "DraftTask" else task["id"]
        ref = by_id[ticket_id]["reference"]
        ok = right(ticket_id, tier, accuracy)
        if schema == "DraftTask":
            return finish(messages, {"subject": "Re: your ticket", "body": "We are on it."})
        if "category" in str(messages[0].content):  # the classify prompt; extract's never says it
            category = (
                ref["category"] if ok else _CATEGORIES[(_CATEGORIES.index(ref["category"]) + 1) % 7]
            )
            complex_ = ref["needs_reply_draft"] and ref["urgency"] not in ("high", "critical")
            return finish(
                messages, {"category": category, "urgency": ref["urgency"], "complex": complex_}
            )
        fields = dict(ref["fields"])
        if not ok:  # a wrong product never trips the extract verifier, so cost stays comparable
            fields["product"] = None if fields["product"] else "Acme Compute"
        return finish(messages, fields)

    return respond
