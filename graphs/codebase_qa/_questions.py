"""Which claims a question about a source tree asks for, and which names it is about."""

from __future__ import annotations

import keyword
import re

__all__ = ["CODE_WORD", "STOP_WORDS", "question_parts", "subject_of", "subjects_of"]

_PARTS = {
    "defined": r"\bwhere is\b.*\b(defined|declared|implemented)\b|\b(defined|declared)\b|^where is\b",
    "located": r"\bwhich (file|module)\b|\bwhere\b",
    "base": r"\bbase class|\binherit|\bextends?\b|\bsubclass|\bderives?\b|\bparent class",
    "raises": r"\braises?\b|\bthrows?\b",
    "value": r"\bvalue (of|does|do)\b|\bwhat value\b|\bdefault\b|\bset to\b|\bhow (many|much|long)\b"
    r"|\b(size|limit)\b",
    "behaviour": r"\bwhat does\b.*\b(do|compute|calculate|return)\b|\bhow does\b",
}
CODE_WORD = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
STOP_WORDS = set(
    "the a an of in on to is are was be it its this that which what where when how does do did "
    "for from with by as and or not no yes new file line class function method module value "
    "default set called defined named base exception return returns".split()
)
_YES_NO_OPENERS = {"does", "is", "are", "can", "do", "will", "should", "has", "have", "did"}


def question_parts(question: str) -> list[str]:
    """Which claims the question asks for, e.g. ``['defined', 'base']``."""
    q = question.lower()
    parts = [name for name, pattern in _PARTS.items() if re.search(pattern, q)]
    if "defined" in parts and "located" in parts:
        parts.remove("located")
    if _is_yes_no(question):
        parts = ["yes_no"]
    return parts


def _is_yes_no(question: str) -> bool:
    q = question.strip().lower()
    first = re.match(r"(?:[^.?!]*[,:;]\s*)?(\w+)", q)
    opens = first is not None and first.group(1) in _YES_NO_OPENERS
    return opens or "true or false" in q or "yes or no" in q


def subjects_of(question: str) -> list[str]:
    """Names the question is about, most specific first.

    Backticked names, then dotted or snake_case ones, CamelCase, and Capitalized words that are
    not the first word; module paths (``langgraph.managed``) come last.
    """
    ranked: list[tuple[int, int, str]] = []
    for i, tick in enumerate(re.findall(r"`([^`]+)`", question)):
        name = tick.strip().removesuffix("()")
        if re.fullmatch(CODE_WORD, name):
            module = "." in name and name == name.lower() and "_" not in name
            ranked.append((3 if module else 0, i, name))
        else:  # code such as `def fs_tools` or `backoff_factor ** (attempts - 1)`
            inner = [w for w in re.findall(CODE_WORD, name) if not keyword.iskeyword(w)]
            ranked += [(1, i, w) for w in inner if "_" in w or re.search(r"[a-z][A-Z]", w)]
    words = re.findall(CODE_WORD, re.sub(r"`[^`]*`", " ", question))
    for i, word in enumerate(words):
        word = word.rstrip(".")
        if "." in word and word == word.lower() and "_" not in word:
            ranked.append((3, i, word))  # a module path, e.g. langgraph.managed
        elif "." in word or "_" in word.strip("_"):
            ranked.append((1, i, word))
        elif re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]|^[A-Z]{2,}", word):
            ranked.append((2, i, word))
        elif i > 0 and word[0].isupper() and word.lower() not in STOP_WORDS:
            ranked.append((3, i, word))
    return list(dict.fromkeys(name for _, _, name in sorted(ranked)))


def subject_of(question: str) -> str | None:
    """The name the question is most likely about (see :func:`subjects_of`)."""
    names = subjects_of(question)
    return names[0] if names else None
