"""Whether a cited line sits in a branch the question's own condition rules out.

"What does Padding.unpack do if I give it a tuple of three integers?" answered from the line
under ``if len(pad) == 4:`` describes another input: the branch compares with 4, the question
says three. :func:`wrong_branch` reads the ``if``/``elif`` headers above a cited body line and
compares the number literals they test with the numbers the question states (a ``len(...)``
test with the counts: number words and the length of a tuple or list written in it).
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._values import number

__all__ = ["case_branch", "outcomes", "question_numbers", "wrong_branch"]

_WORD_NUMBERS = r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten)\b"
_MORE = {"six": 6, "seven": 7, "eight": 8, "nine": 9}


def question_numbers(question: str) -> tuple[set[float], set[float]]:
    """(every number the question states, the counts it states): words, digits, literal sizes."""
    low = question.lower()
    counts = {float(_MORE.get(w) or number(w) or 0) for w in re.findall(_WORD_NUMBERS, low)}
    for items in re.findall(r"[(\[]([^()\[\]]*,[^()\[\]]*)[)\]]", question):
        counts.add(float(len([i for i in items.split(",") if i.strip()])))
    values = {float(d) for d in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", question)}
    return values | counts, counts


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _headers(lines: list[str], first: int, line: int) -> list[tuple[int, str]]:
    """The ``if``/``elif`` headers ``line`` is nested under, innermost first."""
    out = []
    depth = _indent(lines[line - 1])
    for m in range(line - 1, first - 1, -1):
        text = lines[m - 1]
        if not text.strip() or _indent(text) >= depth:
            continue
        depth = _indent(text)
        if re.match(r"\s*(if|elif)\b.*:\s*(#.*)?$", text):
            out.append((m, text.strip()))
        if re.match(r"\s*(async\s+)?(def|class)\b", text):
            break
    return out


def wrong_branch(lines: list[str], first: int, line: int, question: str) -> tuple[int, str] | None:
    """The header (line, code) of a branch the question rules out that ``line`` is in, or None."""
    values, counts = question_numbers(question)
    if not values:
        return None
    for at, header in _headers(lines, first, line):
        for lhs, literal in re.findall(r"([\w.()\[\]]+)\s*==\s*(-?\d+(?:\.\d+)?)\b", header):
            pool = counts if lhs.startswith("len(") else values
            if pool and float(literal) not in pool:
                return at, header
    return None


def outcomes(lines: list[str], body: list[int], first: int, question: str) -> list[int]:
    """The body's ``return``/``raise`` lines in no branch the question rules out."""
    return [
        n
        for n in body
        if re.match(r"\s*(return|raise)\b", lines[n - 1])
        and wrong_branch(lines, first, n, question) is None
    ]


def _block(lines: list[str], header: int, last: int) -> range:
    """The lines of the block an ``if`` header at ``header`` opens (up to ``last``)."""
    depth = _indent(lines[header - 1])
    end = header
    for m in range(header + 1, last + 1):
        if lines[m - 1].strip() and _indent(lines[m - 1]) <= depth:
            break
        end = m
    return range(header, end + 1)


def case_branch(lines: list[str], body: list[int], question: str) -> range | None:
    """The block of the ``if`` that tests a string the question quotes (``"none"``), or None.

    "What does Style.parse give back for "none"?" is decided under ``if ... == "none"``; a
    line elsewhere in the body describes another input.
    """
    quoted = {a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", question)}
    quoted = {q for q in quoted if len(q) > 1}
    if not quoted or not body:
        return None
    for n in body:
        header = lines[n - 1]
        if not re.match(r"\s*(if|elif)\b", header):
            continue
        tested = {a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", header)}
        if tested & quoted:
            return _block(lines, n, body[-1])
    return None
