"""Which claims a question about a source tree asks for, and which names it is about."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "CODE_WORD", "STOP_WORDS", "PartKind", "QuestionPart", "WANTS", "parse_parts", "question_parts",
    "spells", "subject_of", "subjects_of",
]  # fmt: skip

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
    "default set called defined named base exception return returns i".split()
)
_PRONOUNS = {"i", "you", "we", "they", "he", "she", "one", "someone", "users"}
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
    # Code such as ``attrs.validators.set_disabled(True)`` is one word here: its dots and
    # brackets are no sentence's end ("After x.y(True), does ...?" is a yes/no question).
    q = re.sub(r"[\w.]*\w\([^()]*\)|\w+(?:\.\w+)+", "code", question.strip().lower())
    # The first word, or the first after a leading clause ("If x is 0, does it ...?").
    heads = [re.match(r"(\w+)", q), re.match(r"[^.?!]*?[,:;]\s*(\w+)", q)]
    opens = any(m is not None and m.group(1) in _YES_NO_OPENERS for m in heads)
    if re.search(r",?\s+or\s+(where|which|what|how)\b", q):
        return False  # "is it in validators.py, or where is it defined?" asks the where
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
        elif "." in word or "_" in word.strip("_") or re.fullmatch(r"__\w+__", word):
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


# --- the question's parts ------------------------------------------------------------------------


class PartKind(StrEnum):
    """The kind of fact one part of a question asks for."""

    VALUE = "value"
    DEFAULT = "default"
    LOCATION = "location"
    BASE = "base"
    TYPE = "type"
    BEHAVIOUR = "behaviour"
    YES_NO = "yes_no"
    MEMBERS = "members"


WANTS = {
    PartKind.VALUE: "the value the code assigns, as written (or its evident equivalent)",
    PartKind.DEFAULT: "the default in the definition's signature or field, as written",
    PartKind.LOCATION: "the file that defines it, citing the definition line",
    PartKind.BASE: "every base class in its class statement",
    PartKind.TYPE: "the annotation as written, every name in it",
    PartKind.BEHAVIOUR: "what its body does, in the body's own terms, citing the body",
    PartKind.YES_NO: (
        "yes or no, then the code that decides it, quoted from a line of the deciding "
        "function's body that you cite (for example: No: raise TypeError(...))"
    ),
    PartKind.MEMBERS: "every member, each one in the definition or its docstring",
}
"""What counts as an answer to each kind of part (shown to the answering model)."""

_KINDS: list[tuple[PartKind, str]] = [
    # "when you subclass MethodView, which names ..." sets a case: it asks for no base
    (PartKind.BASE, r"\bbase class|\binherit|\bextends?\b|(?<!you )(?<!we )(?<!\bi )\bsubclass"
     r"|\bderives?\b|\bparent class"),
    # "what is NothingType defined as" asks for the value, not the place
    (PartKind.VALUE, r"^(?!.*\bwhere\b).*\b(defined|declared) as\b"),
    # "where do the bytes end up" asks what the code does, not where it is written
    (PartKind.VALUE, r"\bwhere (?:do|does|did)\b(?!.*\b(?:defined?|declared?|implement(?:s|ed)?"
     r"|lives?|located|come from)\b)"),
    (PartKind.LOCATION, r"\bwhere\b|\bwhich (?:[\w-]+ )?(file|module)\b"),
    # "what is the declared (return) type of X" asks for the annotation, not the place
    (PartKind.TYPE, r"\bannotated type\b|\btype annotation\b|\bannotation of\b|\bwhat (is the )?type\b"
     r"|\btype (of|hint)\b|\breturn type\b|\bby (its|the) annotation\b|\bannotated (as|to return)\b"
     r"|\bhow (?:is|are)\b.*\bannotated$"),
    (PartKind.LOCATION, r"\b(defined|declared)\b"),
    # "what happens if I pass default= ..." asks what the code does, whatever it names
    (PartKind.BEHAVIOUR, r"\bwhat happens\b"),
    (PartKind.DEFAULT, r"\bif (?:i|you|we) (?:don't|do not|never) (?:pass|give|set|provide)"
     r"|\bwithout (?:giving|passing|setting|providing|an?|any)\b|\b(?:is|are) (?:not given|omitted|not passed)\b"),
    # "what are the class-level defaults of a and of b": two defaults, not a list
    (PartKind.DEFAULT, r"\bwhat (?:is|are) the (?:[\w-]+ )?defaults? (?:values? )?of\b"),
    (PartKind.MEMBERS, r"\bwhat (names|members|values|items|fields|attributes|parameters|arguments|keys)\b|\bwhat are\b|\bwhich (?:[\w-]+ ){0,3}?(?!(?:does|has|is|was|this|its)\b)\w*[^su\W]s\s+(?:are|do|does|did|can|will|has|have|of|in|make|get|back|go|end|come|count|appear)\b|\blist (of|the)\b|\bname (all|every)\b"),
    (PartKind.VALUE, r"\bhow (many|much|long)\b"),
    (PartKind.DEFAULT, r"\bdefaults?\b(?!\s*=)"),  # "default=" is an argument, not the word
    (PartKind.BEHAVIOUR, r"\bwhat does\b.*\b(do|compute|calculate|return)\b|\bhow does\b"
     r"|\brais(?:e|es|ed)\b|\bthrow(?:s|n)?\b|\b(in )?what order\b|\bwhat happens\b"
     r"|\b(?:what|which) (?:error|exception)\b"),  # "what error message does loading X produce"
]  # fmt: skip
_SPLIT = re.compile(
    r"\s*(?:[,;]\s*and\s+|;\s*|\s+and\s+(?=(?:what|where|which|when|how)\b))",
    re.I,
)


@dataclass(frozen=True)
class QuestionPart:
    """One part of a question: its own clause, the kind of fact it asks, and its subjects.

    ``subjects`` are the clause's own names first, then those of the parts before it (``its
    constructor`` is the earlier part's class); ``wants`` says what counts as an answer.
    """

    number: int
    text: str
    kind: PartKind
    subjects: tuple[str, ...]
    words: tuple[str, ...] = ()
    of: int = 1
    files: tuple[str, ...] = ()  # files the question names (``_config.py``): look there first
    spelled: tuple[str, ...] = ()  # subjects found by the words of their names (the index's)
    context: str = ""  # the statements before the question: "A client POSTs text/plain. ..."

    @property
    def case(self) -> str:
        """The part's own words with the statements the question sets its case up with."""
        return f"{self.context} {self.text}".strip()

    @property
    def subject(self) -> str | None:
        """The name this part is most likely about."""
        return self.subjects[0] if self.subjects else None

    @property
    def wants(self) -> str:
        """What counts as an answer to this part."""
        return WANTS[self.kind]

    @property
    def label(self) -> str:
        """``part 2 of 2 (yes_no about resolve_color_default: "does it fall back ...")``."""
        about = f" about {self.subject}" if self.subject else ""
        return f'part {self.number} of {self.of} ({self.kind}{about}: "{self.text}")'


def parse_parts(question: str) -> list[QuestionPart]:
    """The question's parts, in order, each typed (deterministic; no model).

    Example:
        >>> [(p.kind, p.subject) for p in parse_parts(
        ...     "Where is make_pass_decorator defined, and what is the default of its ensure parameter?")]
        [('location', 'make_pass_decorator'), ('default', 'make_pass_decorator')]
    """
    context, asked = _context(question)
    clauses = [c.strip(" ?.") for c in _SPLIT.split(asked) if c.strip(" ?.")]
    clauses = [c for clause in clauses for c in _and_of(clause)]
    files = tuple(dict.fromkeys(re.findall(r"[\w./-]*\w\.pyi?\b", question)))
    parts: list[QuestionPart] = []
    # Names of a statement before the question ("Live takes a vertical_overflow argument typed
    # VerticalOverflowMethod. Where is it declared?") come after the question's own, in order.
    earlier = sorted(_names_in_clause(context), key=lambda n: context.find(n)) if context else []
    for number, clause in enumerate(clauses or [question], start=1):
        own = _names_in_clause(clause)
        subjects = tuple(dict.fromkeys([*own, *earlier]))
        words = tuple(
            w for w in re.findall(r"(?<![\w.])[a-z_][a-z0-9_]{2,}\b", clause) if w not in STOP_WORDS
        )
        parts.append(QuestionPart(number, clause, _kind_of(clause), subjects, words))
        earlier = [*own, *earlier]
    return [replace(p, of=len(parts), files=files, context=context) for p in parts]


def _and_of(clause: str) -> list[str]:
    """``the defaults of a and of b`` as two clauses: ``the defaults of a``, ``the defaults of b``."""
    m = re.match(r"(.*\bof)\s+(.+?)\s+and of\s+(.+)$", clause)
    return [f"{m[1]} {m[2]}", f"{m[1]} {m[3]}"] if m else [clause]


def _context(question: str) -> tuple[str, str]:
    """(the statements before the question, the question): ``"X is Y. What is Z?"``."""
    sentences = re.split(r"(?<=[a-z0-9)`'\"][.!])\s+(?=[A-Z`])", question.strip())
    if len(sentences) < 2 or not sentences[-1].rstrip().endswith("?"):
        return "", question.strip()
    first = next(i for i, s in enumerate(sentences) if s.rstrip().endswith("?"))
    return " ".join(sentences[:first]), " ".join(sentences[first:])


def _names_in_clause(clause: str) -> list[str]:
    """The clause's names: :func:`subjects_of`'s and a plain word named as code ("function echo")."""
    named = re.findall(
        r"\b(?:function|class|method|exception|constant|attribute|decorator)\s+`?([A-Za-z_]\w*)\b"
        r"(?!\s+(?:the|a|an|that|whose|which|to|by|of|for|from|with)\b)",
        clause,
    )
    named += re.findall(r"\b([A-Za-z_]\w*)`?\s+(?:class|function|method|decorator)\b", clause)
    named += re.findall(r"^where is `?([A-Za-z_]\w*)`?\s+(?:defined|declared)\b", clause, re.I)
    named += re.findall(r"(?<![\w.`])([A-Za-z_]\w*)\(\)", clause)  # "the attrs() function"
    plain = [n for n in named if n.lower() not in STOP_WORDS and n.lower() not in _PRONOUNS]
    # "(..., not attrs.define)": a name the question sets aside is not what it is about
    ruled_out = set(re.findall(rf"\bnot (?:the )?`?({CODE_WORD})", clause))
    found = [*subjects_of(clause), *plain]
    # "its own JSONRenderer (structlog.twisted.JSONRenderer)": the dotted name says which one
    dotted = [n for n in found if "." in n]
    return [
        n for n in dict.fromkeys(found)
        if not keyword.iskeyword(n) and not n.endswith((".py", ".pyi")) and n not in ruled_out
        and not any(d.endswith(f".{n}") for d in dotted)
    ]  # fmt: skip


def _kind_of(clause: str) -> PartKind:
    conditional = re.match(
        r"(if|when)\b.*\b(does|do|is|are|can|will)\s+(it|they|this|that)\b", clause, re.I
    )
    if _is_yes_no(clause) or conditional and not re.search(r"\b(what|which|how)\b", clause, re.I):
        return PartKind.YES_NO
    low = clause.lower()
    for kind, pattern in _KINDS:
        if re.search(pattern, low):
            return kind
    return PartKind.VALUE


def spells(name: str, words: set[str]) -> bool:
    """Whether ``name`` is two or more of ``words`` run together (``followlinks``: follow, links).

    Underscores and case do not count: ``fallback_mimetype`` is "fall back" + "mimetype".
    """
    flat = name.replace("_", "").lower()

    def split(rest: str, count: int) -> bool:
        if not rest:
            return count >= 2
        return any(rest.startswith(w) and split(rest[len(w) :], count + 1) for w in words if w)

    return split(flat, 0)
