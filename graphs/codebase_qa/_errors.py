"""A part that asks which error or message the code gives is answered only by naming one.

"What error message is given when loading something that isn't a member?" is answered by an
exception class (``ValidationError``, ``ValueError``) or by the message's own words (``Must be
one of``), or by saying that none is raised: a description of the class around it ("members are
serialized by name") shares the body's words and answers nothing.
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._checker import Checker
from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["EXCEPTION", "asks_error", "named_error", "record_error"]

_ASKS = re.compile(
    r"\b(?:what|which)\s+(?:\w+\s+)?(?:error|exception|warning|message)s?\b"
    r"|\b(?:error|exception)\s+(?:message\s+)?(?:is|does|do)\b",
    re.I,
)
EXCEPTION = re.compile(  # an exception class named in prose
    r"\b[A-Z]\w*(?:Error|Exception|Warning|Exit|Abort|Interrupt)\b"
)
_NONE = re.compile(
    r"\b(?:no|not|never|nothing|none|without)\b[^.;]*\b(?:rais|error|exception|warn)", re.I
)
_LITERAL = re.compile(r"\"([^\"\\]{3,})\"|'([^'\\]{3,})'")


def asks_error(text: str) -> bool:
    """Whether a part asks which error, exception, warning or message the code gives."""
    return bool(_ASKS.search(text))


def named_error(
    index: CodeIndex, answer: str, d: Definition, question: str
) -> tuple[str | None, int] | None:
    """``(problem, 0)`` when the answer names no error; ``(None, line)`` where the one it names is.

    None when the answer says no error is given, or names one ``d``'s code does not hold (the
    behaviour checks judge those).
    """
    if _NONE.search(answer):
        return None
    lines = {n: index.line_text(d.path, n) for n in range(d.line, d.end_line + 1)}
    named = {m[0] for m in EXCEPTION.finditer(answer)}
    named |= {c.name for c in _exception_classes(index, answer)}
    if named:
        at = [n for n, text in lines.items() if any(re.search(rf"\b{x}\b", text) for x in named)]
        return (None, at[0]) if at else None
    said, asked = _words(answer), set(_words(question))
    messages = [(n, m[0] or m[1]) for n, text in lines.items() for m in _LITERAL.findall(text)]
    for n, message in messages:
        words = _words(message)
        for pair in zip(words, words[1:], strict=False):
            if _in_order(said, pair) and not set(pair) <= asked | STOP_WORDS:
                return None, n
    raised = [text for text in lines.values() if text.startswith("raise ")][:2]
    shown = "; ".join([*raised, *(repr(m) for _, m in messages if " " in m)][:3])
    return (
        f"the question asks which error or message is given, and the answer names no exception "
        f"and quotes no message of {d.qualname} ({d.path}:{d.line}-{d.end_line})"
        + (f"; its code has: {shown}" if shown else ""),
        0,
    )


def record_error(checker: Checker, d: Definition, problem: str | None, line: int) -> None:
    """An error part's verdict: its problem, or support at the line giving the error named."""
    if problem is not None:
        checker.problems.append(problem)
    else:
        checker.support(f"{d.qualname} gives the error the answer names", (d.path, line))


def _exception_classes(index: CodeIndex, answer: str) -> list[Definition]:
    found: list[Definition] = []
    for word in set(re.findall(r"\b[A-Z]\w+\b", answer)):
        try:
            defs = index.find_definition(word)
        except LookupError:
            continue
        found += [x for x in defs if x.kind is Kind.CLASS and x.flavor == "exception"]
    return found


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _in_order(words: list[str], pair: tuple[str, str]) -> bool:
    return any(words[i : i + 2] == list(pair) for i in range(len(words) - 1))
