"""Answers that are no answer: ones restating the question, a tool's schema or the task payload."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.graphs.codebase_qa.schemas import ExtractTask, Fact, Finding, Findings, SearchTask

__all__ = ["SCHEMA_FIELDS", "no_answer"]

SCHEMA_FIELDS = tuple(
    dict.fromkeys(
        f
        for model in (SearchTask, ExtractTask, Findings, Finding, Fact)
        for f in model.model_fields
        if f not in ("path", "line", "question")  # words any answer about code may use
    )
)
"""The subagents' task and result fields: an answer naming them as the code's is an echo."""


def _mentions(text: str, field: str) -> bool:
    spaced = field.replace("_", r"[_ ]")
    return bool(re.search(rf"(?<![\w]){spaced}s?\b", text, re.I))


def no_answer(question: str, answer: str, cited_text: Iterable[str]) -> str | None:
    """Why ``answer`` is no answer (an echo of the schema, or of the question), else None."""
    cited = " ".join(cited_text)
    echoed = [f for f in SCHEMA_FIELDS if _mentions(answer, f) and not _mentions(question, f)
              and not _mentions(cited, f)]  # fmt: skip
    if "_" in "".join(echoed) or len(echoed) >= 2:
        return (
            f"the answer restates the search tool's task fields ({', '.join(echoed)}), not the "
            "code: that is no answer; state what the cited code defines"
        )
    words = {w.strip(".") for w in re.findall(r"[a-z0-9_.]{3,}", answer.lower())} - STOP_WORDS
    if not words:  # a short answer ("uu", "x") is judged by its own tokens, however short
        short = {w.strip(".") for w in re.findall(r"[a-z0-9_.]+", answer.lower())} - {""}
        asked_short = {w.strip(".") for w in re.findall(r"[a-z0-9_.]+", question.lower())}
        says = re.search(r"\b(yes|no|true|false|none)\b", answer, re.I)
        if short and short <= asked_short and not says and not _new_literal(question, answer):
            return (
                "the answer restates the question: that is no answer; state the fact the code shows"
            )
    asked = {w.strip(".") for w in re.findall(r"[a-z0-9_.]{3,}", question.lower())}
    # The question itself, asked back ("After x(True), does ...?"), is no answer whatever it
    # holds; a short answer in the question's own words is one unless it says yes/no or a value.
    asked_back = answer.strip().endswith("?") or len(words) >= max(4, len(asked - STOP_WORDS))
    if (
        words
        and words <= asked
        and (
            asked_back
            or not re.search(r"\b(yes|no|true|false|none)\b", answer, re.I)
            and not _new_literal(question, answer)
        )
    ):
        return "the answer restates the question: that is no answer; state the fact the code shows"
    return None


def _new_literal(question: str, answer: str) -> bool:
    """A quoted string (even ``' '``) or a number in the answer that the question lacks."""
    quoted = [m.group(0) for m in re.finditer(r"(['\"`])[^'\"`]{0,40}\1", answer)]
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?\b", answer)
    return any(x not in question for x in (*quoted, *numbers))
