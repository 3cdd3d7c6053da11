"""Definitions whose names say what a phrase says: a search by the words of names.

``grep`` finds a phrase only as written; "cookie size" is ``max_cookie_size`` and "PIN time"
``PIN_TIME``. :func:`named_like` ranks the index's definitions by the phrase's words that are
words of their names (``snake_case`` and ``CamelCase`` split; a plural or a shared 5-letter stem
counts), each weighted by how rare the word is among the tree's names, with the words of the
file path counted at half weight. It is shown to the search model as a lead, never taken as
an answer: the checks hold the answer to what the definition it cites says.
"""

from __future__ import annotations

import math
import re
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["name_words", "named_like", "same_word", "scored_like"]

_RARITY: WeakKeyDictionary[CodeIndex, tuple[dict[str, int], int]] = WeakKeyDictionary()


def name_words(name: str) -> list[str]:
    """``max_cookie_size`` -> max, cookie, size; ``RequestRedirect`` -> request, redirect."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [t for t in re.split(r"[_\W]+", spaced.lower()) if t]


def same_word(word: str, token: str) -> bool:
    w, t = word.removesuffix("s"), token.removesuffix("s")
    return w == t or (len(w) > 5 and len(t) > 5 and w[:5] == t[:5])


def _rarity(index: CodeIndex) -> tuple[dict[str, int], int]:
    if index not in _RARITY:
        counts: dict[str, int] = {}
        total = 0
        for d in index:
            total += 1
            for t in set(name_words(d.name)):
                counts[t] = counts.get(t, 0) + 1
        _RARITY[index] = (counts, total)
    return _RARITY[index]


def named_like(index: CodeIndex, phrase: str, limit: int = 5) -> list[Definition]:
    """Definitions whose names carry the most of the phrase's words (two, if it has two)."""
    return [d for _, d in scored_like(index, phrase)[:limit]]


def scored_like(index: CodeIndex, phrase: str) -> list[tuple[float, Definition]]:
    """:func:`named_like`'s ranking, best first, with each definition's score."""
    words = [w for w in dict.fromkeys(re.findall(r"[a-z0-9]{3,}", phrase.lower()))
             if w not in STOP_WORDS]  # fmt: skip
    if not words:
        return []
    counts, total = _rarity(index)
    need = min(2, len(words))
    scored: list[tuple[float, Definition]] = []
    for d in index:
        if d.kind is Kind.MODULE or d.name.startswith("__"):
            continue
        own = name_words(d.name)
        # ``SecureCookieSessionInterface.salt``: the owner's words count, at half weight
        owner = [t for t in name_words(d.qualname.rpartition(".")[0]) if t not in own]
        hits = {t for w in words for t in own if same_word(w, t)}
        held = {t for w in words for t in owner if same_word(w, t)}
        if (
            not hits
            or len({w for w in words if any(same_word(w, t) for t in [*own, *owner])}) < need
        ):
            continue
        path = [t for t in name_words(d.path.removesuffix(".py")) if t != "init"]
        score = sum(math.log(1 + total / counts.get(t, 1)) for t in hits)
        score += 0.5 * sum(math.log(1 + total / counts.get(t, 1)) for t in held)
        score += 0.5 * sum(1 for w in words if any(same_word(w, t) for t in path))
        scored.append((score, d))
    scored.sort(key=lambda s: (-s[0], s[1].path, s[1].line))
    return scored
