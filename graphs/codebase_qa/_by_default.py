"""A yes/no asked "by default" of a flag the question spells: decided by the flag's default.

"Does FileSystemLoader follow symbolic links by default?" is decided by
``followlinks: bool = False`` in its constructor: no. The flag counts only when the question's
own words spell its name (``follow`` + ``links``), so a flag whose sense is turned around
(``ignore_memcache_errors`` for "does an exception propagate") is left to the body checks.
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._facts import Target, lookup, param_line
from tierflow.graphs.codebase_qa._questions import QuestionPart, spells
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["default_flag", "says_no"]

_BY_DEFAULT = re.compile(
    r"\bby default\b|\bdefault settings?\b|\bif (?:i|you|we) (?:don't|do not) (?:pass|set|give)"
    r"|\bwithout (?:passing|setting|giving)\b",
    re.I,
)
_FLAGS = {"True": True, "False": False}


def default_flag(index: CodeIndex, part: QuestionPart) -> tuple[Target, bool] | None:
    """The boolean parameter the part asks "by default" about, and its default; else None."""
    if not _BY_DEFAULT.search(part.text):
        return None
    words = set(re.findall(r"[a-z]{2,}", part.text.lower()))
    for name in part.subjects:
        for owner in lookup(index, name)[:1]:
            func = index.constructor(owner) if owner.kind is Kind.CLASS else owner
            if func is None or func.kind not in (Kind.FUNCTION, Kind.METHOD):
                continue
            found = _spelled_flag(index, func, words)
            if found is not None:
                return found
    return None


def _spelled_flag(
    index: CodeIndex, func: Definition, words: set[str]
) -> tuple[Target, bool] | None:
    for p in func.parameters:
        if p.default in _FLAGS and spells(p.name, words):
            return Target(func, p, param_line(index, func, p.name)), _FLAGS[p.default]
    return None


def says_no(answer: str) -> bool | None:
    """True for a no, False for a yes, None when the answer says neither."""
    head = re.match(r"\W*(yes|no|true|false)\b", answer, re.I)
    if head:
        return head[1].lower() in ("no", "false")
    if re.search(r"\b(no|false|not|never|cannot)\b|n't\b", answer, re.I):
        return True
    if re.search(r"\b(yes|true|does|do|will|is|are)\b", answer, re.I):
        return False
    return None
