"""Triage's eval suite: a dataset ticket as input, field-level scores of its outcome.

Example:
    >>> make_input({"id": "t1", "subject": "s", "body": "b", "customer_email": "e", "x": 1})
    {'tickets': [{'id': 't1', 'subject': 's', 'body': 'b', 'customer_email': 'e'}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierflow.graphspec import Scored
from tierflow.scoring import mean, normalize, normalized_match

__all__ = ["TRIAGE_FIELDS", "CLASSIFY_METRICS", "make_input", "score", "triage_scores"]

TRIAGE_FIELDS = ("order_id", "amount_usd", "product", "customer_email")
CLASSIFY_METRICS = ("category", "urgency", "needs_reply_draft")


def make_input(item: Mapping[str, Any]) -> dict[str, Any]:
    """The one-ticket run of a dataset item."""
    ticket = {k: item[k] for k in ("id", "subject", "body", "customer_email")}
    return {"tickets": [ticket]}


def score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    """The ticket's outcome against the item's reference; classify and extract scored apart."""
    outcome = (state.get("tickets_out") or {}).get(item["id"])
    scores = triage_scores(outcome, item["reference"])
    per_subagent = {
        "classify": mean(scores[m] for m in CLASSIFY_METRICS),
        "extract": mean(scores[f] for f in TRIAGE_FIELDS),
    }
    return Scored(scores, mean(scores.values()), per_subagent, outcome)


def _field_equal(name: str, predicted: Any, reference: Any) -> bool:
    if reference is None or predicted is None:
        return reference is None and (
            predicted is None or normalize(predicted) in ("", "null", "none")
        )
    if name == "amount_usd":
        try:
            return abs(float(predicted) - float(reference)) < 0.005
        except (TypeError, ValueError):
            return False
    return normalize(predicted) == normalize(reference)


def triage_scores(
    outcome: Mapping[str, Any] | None, reference: Mapping[str, Any]
) -> dict[str, float]:
    """Field-level accuracy of one ticket's outcome against the dataset's ``reference``.

    Keys: ``category``, ``urgency``, ``needs_reply_draft`` and each of :data:`TRIAGE_FIELDS`;
    a missing outcome (failed or stopped ticket) scores 0 everywhere.
    """
    outcome = outcome or {}
    label = outcome.get("classification") or {}
    fields = outcome.get("fields") or {}
    scores = {
        "category": float(
            bool(label) and normalized_match(label.get("category"), reference["category"])
        ),
        "urgency": float(
            bool(label) and normalized_match(label.get("urgency"), reference["urgency"])
        ),
        "needs_reply_draft": float(
            bool(label)
            and (outcome.get("draft") is not None) == bool(reference["needs_reply_draft"])
        ),
    }
    for name in TRIAGE_FIELDS:
        ok = bool(fields) and _field_equal(name, fields.get(name), reference["fields"].get(name))
        scores[name] = float(ok)
    return scores
