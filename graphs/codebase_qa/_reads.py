"""The constants a function reads: where a value it uses "by default" is set, when not in its signature.

"Above what size in bytes does Response.set_cookie warn by default?" has no parameter for it:
the body passes ``max_size=self.max_cookie_size``, and ``max_cookie_size = 4093`` is a class
attribute. :func:`read_values` lists the attributes (``self.x``, of the function's own class)
and module constants the body reads that hold a literal value and whose name shares a word
with the part ("size"; "how long" counts as time, timeout, age, ...), and :func:`judge_reads`
holds a value answer to one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tierflow.graphs.codebase_qa._checker import Checker
from tierflow.graphs.codebase_qa._lookup import body_lines, lookup
from tierflow.graphs.codebase_qa._named_like import name_words, same_word
from tierflow.graphs.codebase_qa._questions import STOP_WORDS, QuestionPart
from tierflow.graphs.codebase_qa._values import states
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["Read", "judge_reads", "read_values"]

_HOLDERS = (Kind.MODULE_CONSTANT, Kind.CLASS_ATTRIBUTE, Kind.ATTRIBUTE)
_LITERAL = re.compile(r"""\s*(-?[\d_.]+(\s*[-+*/]\s*[\d_.()]+)*|'[^']*'|"[^"]*"|True|False)\s*""")
# How a question asks for a kind of value, and the words code names such values with.
_ASKED_AS = (
    (r"\bhow long\b", {"time", "timeout", "age", "duration", "seconds", "ttl", "expires"}),
    (
        r"\bhow (big|large|many bytes)\b|\btoo (big|large|long)\b|\bbytes\b",
        {"size", "max", "limit"},
    ),
    (r"\bhow many\b", {"count", "max", "limit", "number"}),
)


@dataclass(frozen=True)
class Read:
    """A constant or attribute with a literal value, read by a function's body at ``line``."""

    definition: Definition
    line: int  # where the function reads it

    @property
    def fact(self) -> str:
        d = self.definition
        return f"{d.where}: {d.qualname} = {d.value} (read at {d.path}:{self.line})"


def _tokens(name: str) -> list[str]:
    return [t for t in name_words(name) if len(t) >= 3]


def _asked(part: QuestionPart, func: Definition) -> set[str]:
    """The part's words for the value, with the words its form implies; not the function's name."""
    text = part.text.lower()
    own = set(_tokens(func.qualname))
    words = {w for w in re.findall(r"[a-z]{3,}", text) if w not in STOP_WORDS and w not in own}
    for pattern, implied in _ASKED_AS:
        if re.search(pattern, text):
            words |= implied
    return words


def read_values(index: CodeIndex, func: Definition, part: QuestionPart) -> list[Read]:
    """The literal-valued attributes and constants ``func``'s body reads that the part names."""
    if func.kind not in (Kind.FUNCTION, Kind.METHOD):
        return []
    owner = func.qualname.rpartition(".")[0]
    asked = _asked(part, func)
    found: dict[tuple[str, int], Read] = {}
    for n in body_lines(index, func):
        code = index.line_text(func.path, n)
        for self_attr, name in re.findall(r"\b(self\.|cls\.)?([A-Za-z_]\w*)\b", code):
            if not any(same_word(w, t) for w in asked for t in _tokens(name)):
                continue
            spots = lookup(index, f"{owner}.{name}") if self_attr and owner else lookup(index, name)
            for d in spots[:1]:
                if d.kind in _HOLDERS and d.value and _LITERAL.fullmatch(d.value):
                    found.setdefault((d.path, d.line), Read(d, n))
    return list(found.values())


def judge_reads(checker: Checker, func: Definition, reads: list[Read]) -> None:
    """The answer must state the value of one of the constants ``func`` reads for it."""
    for r in reads:
        d = r.definition
        if states(checker.answer, d.value or ""):
            checker.support(f"{func.qualname} reads {d.qualname} = {d.value}", (d.path, d.line))
            return
    shown = "; ".join(f"{r.definition.qualname} = {r.definition.value} ({r.definition.where}, "
                      f"read at {func.path}:{r.line})" for r in reads[:3])  # fmt: skip
    checker.problems.append(f"{func.qualname} uses {shown}; the answer states none of them")
