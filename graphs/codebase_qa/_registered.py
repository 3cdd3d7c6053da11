"""A question's parts with the names it reaches without writing them as code.

Two ways: by a registered key ("the wordwrap filter"), and by the words of a name spelled out
("which attributes of generator objects does the sandbox treat as unsafe" is
``UNSAFE_GENERATOR_ATTRIBUTES``).

``parse_parts`` reads names off the question's words alone. A name a question reaches only
through a string key the code registers (``FILTERS = {"wordwrap": do_wordwrap}``, a sandbox's
``self.globals["range"] = safe_range``) needs the index: this adds the registered definition,
first, to the subjects of the part that names the key, and after the own names of the parts
that follow (they inherit earlier parts' subjects).

A key counts when the question uses it as the registry does: written as a call
(``range(10)``), next to a noun its container is named by (``the wordwrap filter`` and
``FILTERS``; ``the path converter`` and ``DEFAULT_CONVERTERS``), or as a code name the tree
does not define (```wordwrap```). A name is spelled out when every word of it (``snake_case``
or ``CamelCase``; three or more, since two such as ``AttrsInstance`` or ``StateNode`` come up in
any question) is a word of the part; that is looked for only when none of the part's own names
is defined in the tree.
"""

from __future__ import annotations

import re
from dataclasses import replace
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._facts import lookup
from tierflow.graphs.codebase_qa._named_like import scored_like
from tierflow.graphs.codebase_qa._questions import STOP_WORDS, PartKind, QuestionPart, parse_parts
from tierflow.tools.code_index import CodeIndex, Definition, Kind, Registration

__all__ = [
    "also_spelled", "described_error", "index_parts", "is_package", "operator_methods", "registered_names",
    "spelled_names",
]  # fmt: skip

_WORD = re.compile(r"(?<![\w.])([A-Za-z_][\w-]*)(?![\w.])")
_SPELLED = (Kind.MODULE_CONSTANT, Kind.CLASS, Kind.FUNCTION, Kind.CLASS_ATTRIBUTE, Kind.FIELD)
_MAX_SPELLED = 3
# Python syntax a question writes, and the method of the object's class it runs.
_OPERATORS = (
    (re.compile(r"\bdel\s+[\w.]+\[[^\]]+\]"), "__delitem__"),
    (re.compile(r"[\w)\]]\[[^\]]+\]\s*=(?!=)"), "__setitem__"),
    (re.compile(r"[\w)\]]\[[^\]]+\](?!\s*=(?!=))"), "__getitem__"),
)
_NAME_WORDS: WeakKeyDictionary[CodeIndex, list[tuple[frozenset[str], Definition]]] = (
    WeakKeyDictionary()
)


def index_parts(index: CodeIndex | None, question: str) -> list[QuestionPart]:
    """:func:`parse_parts`, each part's subjects led by the definitions its keys reach."""
    parts = parse_parts(question)
    if index is None:
        return parts
    inherited: list[str] = []
    out: list[QuestionPart] = []
    for part in parts:
        own = [n for n in registered_names(index, part) if n not in part.subjects]
        spelled: list[str] = []
        if not own and not any(lookup(index, n) for n in part.subjects if not is_package(index, n)):
            own = spelled = spelled_names(index, part)
        first = [*own, *part.subjects]
        first = [
            *operator_methods(index, part.text, first),
            *described_error(index, part, first),
            *first,
        ]
        subjects = [*first, *(n for n in inherited if n not in first)]
        # the package's own name ("does Flask's ... use SHA-1") after what the part is about
        subjects.sort(key=lambda n: is_package(index, n))
        out.append(replace(part, subjects=tuple(subjects), spelled=tuple(spelled)))
        inherited = [*own, *inherited]
    return out


def is_package(index: CodeIndex, name: str) -> bool:
    """Whether ``name`` is the tree's package ("Flask's default session interface", "werkzeug's")."""
    return name.lower() == index.root.name.lower()


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


def spelled_names(index: CodeIndex, part: QuestionPart) -> list[str]:
    """Dotted names of the definitions whose every word (three or more) is a word of the part."""
    said = {w.removesuffix("'s") for w in re.findall(r"[a-z0-9']+", part.text.lower())}
    said |= {w.removesuffix("s") for w in said} | {f"{w}s" for w in said}
    # Every word, or all but one of four or more ("the default cookie session interface" is
    # ``SecureCookieSessionInterface``): three of its words at least, not counting stop words.
    found = [
        (len(words & said), len(words - said), d)
        for words, d in _name_words(index)
        if len(words - said) <= (1 if len(words) >= 4 else 0)
        and len(words & said - STOP_WORDS) >= 3
    ]
    found.sort(key=lambda x: (x[1], -x[0], x[2].path, x[2].line))
    return list(dict.fromkeys(d.dotted for _, _, d in found))[:_MAX_SPELLED]


def _name_words(index: CodeIndex) -> list[tuple[frozenset[str], Definition]]:
    """Each definition of a spellable kind with the words of its name (built once per index)."""
    if index not in _NAME_WORDS:
        out: list[tuple[frozenset[str], Definition]] = []
        for d in index:
            if d.kind in _SPELLED and not d.name.startswith("__"):
                spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", d.name)
                words = frozenset(w for w in spaced.lower().split("_") if w)
                if len(words) >= 3:
                    out.append((words, d))
        _NAME_WORDS[index] = out
    return _NAME_WORDS[index]


def also_spelled(index: CodeIndex, part: QuestionPart) -> list[Definition]:
    """The definitions of the part's spelled names after the first: a list asked of several.

    "Which attributes of generator, coroutine and async generator objects ..." names three
    constants; the members check takes their members together.
    """
    return [d for name in part.spelled[1:] for d in lookup(index, name)[:1]]


def operator_methods(index: CodeIndex, text: str, names: list[str]) -> list[str]:
    """``Headers.__setitem__`` for "``response.headers['X'] = v`` on a Headers object".

    Indexing written as code runs a method of the indexed object's class: of the classes the
    part names, those that define it (the first such syntax in the text decides which).
    """
    for pattern, method in _OPERATORS:
        if pattern.search(text):
            return [
                found[0].dotted
                for n in names
                if any(d.kind is Kind.CLASS for d in lookup(index, n))
                and (found := [d for d in lookup(index, f"{n}.{method}") if d.kind is Kind.METHOD])
            ]
    return []


_THAT_ERROR = re.compile(r"\b(that|this|such an?)\s+(exception|error)\b", re.I)


def described_error(index: CodeIndex, part: QuestionPart, names: list[str]) -> list[str]:
    """The exception class a part describes in words ("that exception"), by its name's words.

    "Flask raises a special error when a routing redirect would drop a POST body. What is the
    base class of that exception?" names ``Flask``, which is no exception: the exception
    classes named like the question's words (``FormDataRoutingRedirect``) lead, when one
    stands out (its words weigh a fifth more than the next one's).
    """
    if part.kind not in (PartKind.BASE, PartKind.LOCATION) or not _THAT_ERROR.search(part.text):
        return []
    if any(d.flavor == "exception" for n in names for d in lookup(index, n)[:1]):
        return []
    found = [(s, d) for s, d in scored_like(index, part.case) if d.flavor == "exception"]
    if not found or (len(found) > 1 and found[0][0] < 1.2 * found[1][0]):
        return []
    return [found[0][1].dotted]
