"""A question's parts with the names it reaches by a registered key: "the wordwrap filter".

``parse_parts`` reads names off the question's words alone. A name a question reaches only
through a string key the code registers (``FILTERS = {"wordwrap": do_wordwrap}``, a sandbox's
``self.globals["range"] = safe_range``) needs the index: this adds the registered definition,
first, to the subjects of the part that names the key, and after the own names of the parts
that follow (they inherit earlier parts' subjects).

A key counts when the question uses it as the registry does: written as a call
(``range(10)``), next to a noun its container is named by (``the wordwrap filter`` and
``FILTERS``; ``the path converter`` and ``DEFAULT_CONVERTERS``), or as a code name the tree
does not define (```wordwrap```).
"""

from __future__ import annotations

import re
from dataclasses import replace

from tierflow.graphs.codebase_qa._facts import lookup
from tierflow.graphs.codebase_qa._questions import STOP_WORDS, QuestionPart, parse_parts
from tierflow.tools.code_index import CodeIndex, Registration

__all__ = ["index_parts", "registered_names"]

_WORD = re.compile(r"(?<![\w.])([A-Za-z_][\w-]*)(?![\w.])")


def index_parts(index: CodeIndex | None, question: str) -> list[QuestionPart]:
    """:func:`parse_parts`, each part's subjects led by the definitions its keys reach."""
    parts = parse_parts(question)
    if index is None:
        return parts
    inherited: list[str] = []
    out: list[QuestionPart] = []
    for part in parts:
        own = [n for n in registered_names(index, part) if n not in part.subjects]
        first = [*own, *part.subjects]
        subjects = [*first, *(n for n in inherited if n not in first)]
        out.append(replace(part, subjects=tuple(subjects)))
        inherited = [*own, *inherited]
    return out


def registered_names(index: CodeIndex, part: QuestionPart) -> list[str]:
    """Dotted names of the definitions the part's text reaches by a registered key."""
    found: list[Registration] = []
    for match in _WORD.finditer(part.text):
        if match[1].lower() not in STOP_WORDS and (hits := index.registered(match[1])):
            if _uses_key(index, part.text, match, hits):
                found += hits
    return list(dict.fromkeys(r.definition.dotted for r in found))


def _uses_key(index: CodeIndex, text: str, match: re.Match[str], hits: list[Registration]) -> bool:
    """Whether the text uses the key as its registry does (a call, its noun, an unknown name)."""
    after, before = text[match.end() :], text[: match.start()]
    if after.startswith("("):
        return True
    if before.endswith("`") and after.startswith("`"):
        return not lookup(index, match[1])
    nouns = [w.strip("`'\",.:;?").lower() for w in [*after.split()[:1], *before.split()[-1:]]]
    return any(_holds(r.container, noun) for r in hits for noun in nouns)


def _holds(container: str, noun: str) -> bool:
    """Whether ``container`` is named for what ``noun`` says: ``FILTERS`` and ``filter``."""
    if len(noun) < 3 or noun in STOP_WORDS:
        return False
    tokens = [t for t in re.split(r"[_.]", container.lower()) if t not in ("", "self", "cls")]
    return any(noun in (t, t.removesuffix("s"), t.removesuffix("es")) for t in tokens)
