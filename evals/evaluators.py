"""Pure scoring functions: answer match, triage fields, citations, routing (no I/O but reading files).

Example:
    >>> normalized_match("`StateGraph`", "stategraph")
    True
    >>> answer_match("It is StateGraph.", "StateGraph")
    True
    >>> routing_correct("Mini", "mini")
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "normalize",
    "normalized_match",
    "exact_match",
    "answer_match",
    "TRIAGE_FIELDS",
    "triage_scores",
    "citation_scores",
    "routing_correct",
    "mean",
]

TRIAGE_FIELDS = ("order_id", "amount_usd", "product", "customer_email")
WINDOW = 3  # cited line may sit this many lines away from the evidence


def normalize(text: Any) -> str:
    """Case-, space- and punctuation-insensitive form (underscores kept: they are identifiers)."""
    words = re.sub(r"[^\w]+", " ", str(text).casefold())
    return " ".join(words.split())


def exact_match(predicted: Any, reference: Any) -> bool:
    """Equal after trimming whitespace and surrounding quotes or backticks."""
    return _trim(predicted) == _trim(reference)


def _trim(value: Any) -> str:
    return str(value).strip().strip("`'\"").strip()


def normalized_match(predicted: Any, reference: Any, aliases: Iterable[Any] = ()) -> bool:
    """The prediction equals the reference or an alias after :func:`normalize`."""
    target = normalize(predicted)
    return bool(target) and any(target == normalize(r) for r in (reference, *aliases))


def answer_match(predicted: Any, reference: Any, aliases: Iterable[Any] = ()) -> bool:
    """Normalized match, or the reference (or an alias) appears as whole words in the answer."""
    if normalized_match(predicted, reference, aliases):
        return True
    padded = f" {normalize(predicted)} "
    return any(normalize(r) and f" {normalize(r)} " in padded for r in (reference, *aliases))


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


def _strip_prefix(path: str) -> str:
    path = path.strip().lstrip("./")
    return path.removeprefix("langgraph/")


def _lines(root: Path, path: str) -> list[str] | None:
    file = (root / _strip_prefix(path)).resolve()
    try:
        if not file.is_relative_to(root.resolve()):
            return None
        return file.read_text(errors="replace").splitlines()
    except (OSError, ValueError):
        return None


def _squash(text: str) -> str:
    return " ".join(text.split())


def citation_scores(
    citations: Sequence[Mapping[str, Any]], evidence: Sequence[Mapping[str, Any]], root: Path | str
) -> dict[str, float]:
    """How well ``citations`` (``{"path", "line"}``) support the dataset's ``evidence``.

    Returns:
        ``cites_exist``: every cited path:line exists under ``root`` (0 when nothing is cited);
        ``evidence_file``: an evidence file is among the cited files;
        ``evidence_line``: a cited line is within ±3 lines of an evidence ``contains`` string.
    """
    root = Path(root)
    cited = [(_strip_prefix(str(c.get("path", ""))), int(c.get("line") or 0)) for c in citations]
    texts = {p: _lines(root, p) for p, _ in cited}
    exist = bool(cited) and all(
        texts[p] is not None and 0 < n <= len(texts[p] or []) for p, n in cited
    )
    files = {p for p, _ in cited}
    evidence_file = any(_strip_prefix(e["path"]) in files for e in evidence)
    evidence_line = False
    for path, line in cited:
        lines = texts[path] or []
        near = _squash("\n".join(lines[max(0, line - 1 - WINDOW) : line + WINDOW]))
        if any(
            _strip_prefix(e["path"]) == path and _squash(e["contains"]) in near for e in evidence
        ):
            evidence_line = True
            break
    return {
        "cites_exist": float(exist),
        "evidence_file": float(evidence_file),
        "evidence_line": float(evidence_line),
    }


def routing_correct(predicted: Any, reference: str) -> float:
    """1.0 when the predicted tier is the dataset's ``cheapest_tier``."""
    return float(predicted is not None and normalize(predicted) == normalize(reference))


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; 0.0 for no values."""
    items = list(values)
    return sum(items) / len(items) if items else 0.0
