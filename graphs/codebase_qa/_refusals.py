"""Answers that are no answer: ones restating the question, a tool's schema or the task payload."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.graphs.codebase_qa.schemas import (
    Answer,
    Citation,
    ExtractTask,
    Fact,
    Finding,
    Findings,
    SearchTask,
)

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

_DESCRIPTIONS = tuple(
    dict.fromkeys(
        " ".join(re.findall(r"[a-z0-9]+", (info.description or "").lower()))
        for model in (SearchTask, ExtractTask, Findings, Finding, Fact, Answer, Citation)
        for info in model.model_fields.values()
    )
)
"""The schemas' field descriptions, as words: an answer that is mostly one is the prompt's echo."""


def _schema_echo(answer: str) -> str | None:
    """The field description the answer repeats ("one sentence: what was found"), else None."""
    said = " ".join(re.findall(r"[a-z0-9]+", answer.lower()))
    for text in _DESCRIPTIONS:
        size = len(text.split())
        if size >= 3 and f" {text} " in f" {said} " and size >= 0.6 * len(said.split()):
            return text
    return None


def _mentions(text: str, field: str) -> bool:
    spaced = field.replace("_", r"[_ ]")
    return bool(re.search(rf"(?<![\w]){spaced}s?\b", text, re.I))


def no_answer(question: str, answer: str, cited_text: Iterable[str]) -> str | None:
    """Why ``answer`` is no answer (empty, an echo of the schema or of the question), else None."""
    if not re.sub(r"[\s,;.:]+", "", answer):  # ", " or "" says nothing at all ("|" may)
        return "the answer says nothing (no word, no value): state the fact the code shows"
    if (echo := _schema_echo(answer)) is not None:
        return (
            f"the answer repeats a schema's field description ({echo!r}), not the code: "
            "that is no answer; state what the cited code defines"
        )
    cited = " ".join(cited_text)
    echoed = [f for f in SCHEMA_FIELDS if _mentions(answer, f) and not _mentions(question, f)
              and not _mentions(cited, f)]  # fmt: skip
    if "_" in "".join(echoed) or len(echoed) >= 2:
        return (
            f"the answer restates the search tool's task fields ({', '.join(echoed)}), not the "
            "code: that is no answer; state what the cited code defines"
        )
    words = _tokens(answer) - STOP_WORDS
    says = _SAYS.search(answer)
    if not words:  # a short answer ("uu", "x") is judged by its own tokens, however short
        short, asked_short = _tokens(answer, shortest=1) - {""}, _tokens(question, shortest=1)
        if short and short <= asked_short and not says and not _new_literal(question, answer):
            return _RESTATES
    asked = _tokens(question)
    # The question itself, asked back ("After x(True), does ...?"), is no answer whatever it
    # holds; a short answer in the question's own words is one unless it says yes/no or a value.
    # Words are compared by their stems ("appends" is the question's "append").
    asked_back = answer.strip().endswith("?") or len(words) >= max(4, len(asked - STOP_WORDS))
    stems, asked_stems = _stems(words - _PRONOUNS), _stems(asked)
    if (
        words
        and stems <= asked_stems
        and (asked_back or not says and not _new_literal(question, answer))
    ):
        return _RESTATES
    return None


_PRONOUNS = {"those", "these", "them", "they", "their", "ones", "which", "that"}


def _stems(words: Iterable[str]) -> set[str]:
    """Words without a plural or verb ending: ``appends``, ``appended`` -> ``append``."""
    return {re.sub(r"(?<=\w{3})(?:ing|ed|es|s)$", "", w) for w in words}


_RESTATES = "the answer restates the question: that is no answer; state the fact the code shows"
_SAYS = re.compile(r"\b(yes|no|true|false|none)\b", re.I)  # a yes/no or a value of its own


def _tokens(text: str, shortest: int = 3) -> set[str]:
    """The lower-cased words, names and dotted names of ``text`` of ``shortest`` chars or more."""
    return {w.strip(".") for w in re.findall(rf"[a-z0-9_.]{{{shortest},}}", text.lower())}


def _new_literal(question: str, answer: str) -> bool:
    """A quoted string (even ``' '``) or a number in the answer that the question lacks."""
    quoted = [m.group(0) for m in re.finditer(r"(['\"`])[^'\"`]{0,40}\1", answer)]
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?\b", answer)
    return any(x not in question for x in (*quoted, *numbers))
