"""What the code index says about one part of a question: its target, and the compact facts.

:func:`index_for` builds a tree's :class:`~tierflow.tools.code_index.CodeIndex` once per
process (the index itself caches on disk); a tree with no Python definitions has none, and the
checks fall back to reading lines. :func:`target_of` resolves a part's subject to the definition
(or a parameter of one) that holds the fact asked for; :func:`facts` renders it for the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._case_params import case_tests
from tierflow.graphs.codebase_qa._cli import as_definition as option_definition
from tierflow.graphs.codebase_qa._cli import option_for
from tierflow.graphs.codebase_qa._lookup import (
    body_lines,
    index_for,
    is_collection,
    is_enum,
    listed_in,
    literal_constant,
    lookup,
)  # fmt: skip
from tierflow.graphs.codebase_qa._outcomes import case_raise, described_raise, raising_members
from tierflow.graphs.codebase_qa._questions import STOP_WORDS, PartKind, QuestionPart, spells
from tierflow.graphs.codebase_qa._reads import read_values
from tierflow.graphs.codebase_qa._settings import as_definition, setting_for
from tierflow.graphs.codebase_qa._substitutes import UNSET, Substitute, substitute, unset_default
from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.tools.code_index import CodeIndex, Definition, Kind, Parameter

__all__ = [
    "Target", "index_for", "literal_constant", "lookup", "target_of", "facts", "param_line",
    "body_lines", "deciding", "deciding_lines", "in_files", "unset_of",
]  # fmt: skip

_CALLABLE = (Kind.FUNCTION, Kind.METHOD)
_VALUES = (PartKind.VALUE, PartKind.DEFAULT)
_UNSET_MEMO: WeakKeyDictionary[CodeIndex, dict[str, Substitute | None]] = WeakKeyDictionary()


@dataclass(frozen=True)
class Target:
    """The definition a part is about, or one parameter of a function (``param``)."""

    definition: Definition
    param: Parameter | None = None
    line: int = 0  # the parameter's own line, for a parameter
    spelled: bool = False  # a parameter the part's words spell: its default is the value asked

    @property
    def name(self) -> str:
        """``Editor.__init__(extension)`` or the definition's qualname."""
        d = self.definition
        return f"{d.qualname}({self.param.name})" if self.param else d.qualname

    @property
    def path(self) -> str:
        return self.definition.path

    @property
    def lines(self) -> tuple[int, int]:
        """The lines a citation of this fact may be on."""
        d = self.definition
        if self.param is not None:
            return d.line, self.line or d.line
        return d.line - len(d.decorators), d.end_line if d.kind is not Kind.CLASS else d.line

    @property
    def default(self) -> str | None:
        """The default as written: a parameter's, a field's, or the value it is bound to."""
        if self.param is not None:
            return self.param.default
        return self.definition.default or self.definition.value

    @property
    def annotation(self) -> str | None:
        """A parameter's annotation, a field's or constant's, or a function's return annotation."""
        if self.param is not None:
            return self.param.annotation
        d = self.definition
        return d.returns if d.kind in _CALLABLE else d.annotation


def param_line(index: CodeIndex, d: Definition, name: str) -> int:
    """The line of parameter ``name`` in ``d``'s header (the ``def`` line when on one line)."""
    for n in range(d.line, min(d.end_line, d.line + 80) + 1):
        if re.search(rf"(?<![\w.]){re.escape(name)}\s*[:=,)]", index.line_text(d.path, n)):
            if (
                n != d.line
                or not re.match(r"(async\s+)?def\s", index.line_text(d.path, n))
                or (re.search(rf"[(,]\s*\**{re.escape(name)}\b", index.line_text(d.path, n)))
            ):
                return n
    return d.line


def _param(index: CodeIndex, owner: Definition, name: str) -> Target | None:
    func = owner if owner.kind in _CALLABLE else None
    if owner.kind is Kind.CLASS:
        func = index.constructor(owner)
    if func is None:
        return None
    for p in func.parameters:
        if p.name.lstrip("*") == name:
            return Target(func, p, param_line(index, func, p.name.lstrip("*")))
    return None


def _member(index: CodeIndex, owner: Definition, name: str) -> Target | None:
    if owner.kind is Kind.METHOD:  # "the params attribute that Context.__init__ sets"
        owner = next((d for d in lookup(index, owner.qualname.rsplit(".", 1)[0])
                      if d.kind is Kind.CLASS and d.path == owner.path), owner)  # fmt: skip
    if owner.kind is not Kind.CLASS:
        return None
    for m in lookup(index, f"{owner.dotted}.{name}"):
        if m.name == name and m.qualname.startswith(owner.qualname + "."):
            return Target(m)
    return None


def target_of(index: CodeIndex, part: QuestionPart) -> Target | None:
    """:func:`_target_of`, or for a value it holds none of, the settings key the part spells."""
    found = _target_of(index, part)
    if (
        found is None and part.kind is PartKind.MEMBERS
    ):  # "which values does `flask routes --sort` accept"
        option = option_for(index, part)
        return Target(option_definition(option, True)) if option and option.choices else None
    if found is None and part.kind in (PartKind.BEHAVIOUR, PartKind.YES_NO):
        raised = described_raise(index, part.case)  # "my view function ends without a return"
        return Target(raised) if raised is not None else None
    if part.kind not in _VALUES or (found is not None and (
        found.default is not None or found.param is not None
        or read_values(index, found.definition, part))):  # fmt: skip
        return found
    setting = setting_for(index, part)  # "how long will the session cookie stay valid"
    if setting is not None:
        return Target(as_definition(setting))
    option = option_for(index, part) if found is None else None  # "`flask run`'s default port"
    return Target(option_definition(option)) if option is not None else found


def _target_of(index: CodeIndex, part: QuestionPart) -> Target | None:
    """The definition (or parameter) holding the fact ``part`` asks for; None when not indexed.

    A part naming an owner and one of its parameters, fields or attributes (``the default
    empty_char of ProgressBar.__init__``, ``the extension its constructor uses``) is about that
    one; else it is about its first subject the index defines.
    """
    plain = part.words if part.kind in (PartKind.DEFAULT, PartKind.TYPE, PartKind.MEMBERS) else ()
    owners = [(n, d) for n in part.subjects for d in in_files(lookup(index, n), part.files)[:1]]
    # The part's own names and words before those it inherits from earlier parts: "which box
    # style does a Table draw with by default" after "the default safe_box" is about ``box``.
    own = [n for n in part.subjects if re.search(rf"(?<![\w.]){re.escape(n)}\b", part.text)]
    attrs = [n.split(".")[-1] for n in [*own, *plain, *part.subjects]]
    if part.kind is PartKind.MEMBERS and re.search(r"\b(enum|members)\b", part.text):
        # "list the members of the CallsiteParameter enum": the enum's, not a signature's
        for _, owner in owners:
            if is_enum(owner):
                return Target(owner)
    if part.kind is PartKind.MEMBERS and re.search(r"\b(parameters|arguments)\b", part.text):
        for _, owner in owners:
            func = index.constructor(owner) if owner.kind is Kind.CLASS else owner
            if func is not None and func.kind in _CALLABLE:
                return Target(func)
    if part.kind is PartKind.MEMBERS:  # "which mimetypes does get_content_type ...": its list
        for _, owner in owners:
            # a class's: the list its methods read ("which method names does MethodView look for")
            funcs = [owner] if owner.kind in _CALLABLE else [
                m for m in index.members(owner.dotted) if m.kind is Kind.METHOD
            ] if owner.kind is Kind.CLASS and not owner.flavor else []  # fmt: skip
            if (raising := raising_members(index, owner, part.text)) is not None:
                return Target(raising)  # "which methods of NullSession raise ... error"
            if owner.kind is Kind.CLASS and (attr := _named_list(index, owner, part)):
                return Target(attr)  # "which tag classes does it register by default": default_tags
            named = "" if owner.kind in _CALLABLE else owner.name  # "Color": not a word of the list
            for func in funcs:
                if listed := listed_in(
                    index, func, part, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", named)
                ):
                    return Target(listed)
    if part.kind not in (PartKind.LOCATION, PartKind.BASE, PartKind.YES_NO, PartKind.BEHAVIOUR):
        # A default is the signature's (``the default node name of ToolNode``) unless the part
        # asks for an attribute; any other value is the member's.
        params_first = (
            part.kind in (PartKind.DEFAULT, PartKind.TYPE) and "attribute" not in part.text
        ) or bool(re.search(r"\b(parameter|argument|constructor)\b", part.text))
        # A parameter the part's own words spell ("fall back" ... "mimetype") before the names
        # it inherits from earlier parts: ``fallback_mimetype``, not part 1's ``cache_timeout``.
        plain_text = re.sub(r"[\w.]*_[\w.]*", " ", part.text.lower())  # not log_time_format's
        named = {w.lower() for n in part.subjects for w in re.findall(r"[A-Za-z][a-z0-9]*", n)}
        said = set(re.findall(r"[a-z0-9]{3,}", plain_text)) - named  # not Style of Style.parse
        for _, owner in owners:
            func = index.constructor(owner) if owner.kind is Kind.CLASS else owner
            if (one := _only_argument(func, part)) is not None:
                return Target(func, one, param_line(index, func, one.name))  # type: ignore[arg-type]
            for p in func.parameters if func is not None and func.kind in _CALLABLE else ():
                if spells(p.name.lstrip("*"), said):
                    return Target(func, p, param_line(index, func, p.name.lstrip("*")), True)
        for attr in dict.fromkeys(attrs):
            for own_name, owner in owners:
                if own_name.split(".")[-1] == attr:
                    continue
                tries = (_param, _member) if params_first else (_member, _param)
                found = tries[0](index, owner, attr) or tries[1](index, owner, attr)
                if found is not None:
                    return found
    names = list(part.subjects)
    if part.kind is PartKind.BASE:  # "what is its base class": the class among the names
        names.sort(key=lambda n: not any(d.kind is Kind.CLASS for d in lookup(index, n)))
    for name in names:
        defs = [d for d in lookup(index, name) if d.kind is not Kind.MODULE]
        if defs:
            return Target(in_files(defs, part.files)[0])
    return None


def _only_argument(func: Definition | None, part: QuestionPart) -> Parameter | None:
    """The one parameter a function takes ("the argument to @app.errorhandler(...)"), if one."""
    if (
        func is None
        or func.kind not in _CALLABLE
        or part.kind not in (PartKind.TYPE, PartKind.DEFAULT)
    ):
        return None
    if not re.search(r"\b(the|its) (argument|parameter)\b(?! [`\w]*_)", part.text):
        return None
    params = [p for p in func.parameters if p.name not in ("self", "cls") and "*" not in p.name]
    return params[0] if len(params) == 1 else None


def _named_list(index: CodeIndex, owner: Definition, part: QuestionPart) -> Definition | None:
    """A list-valued attribute of the class whose every word (two or more) the part says."""
    said = {w.removesuffix("s") for w in re.findall(r"[a-z]{3,}", part.text.lower())}
    for m in index.members(owner.dotted):
        words = {w.removesuffix("s") for w in re.split(r"_+", m.name.lower()) if w}
        if (m.kind in (Kind.CLASS_ATTRIBUTE, Kind.ATTRIBUTE) and len(words) >= 2
                and words <= said and is_collection(m.value or "")):  # fmt: skip
            return m
    return None


def in_files(defs: list[Definition], files: tuple[str, ...]) -> list[Definition]:
    """``defs`` with those in the files the question names first (``the __all__ of _config.py``)."""
    if not files:
        return defs
    named = [d for d in defs if any(d.path == f or d.path.endswith("/" + f.lstrip("./"))
                                    or f.endswith("/" + d.path) for f in files)]  # fmt: skip
    return [*named, *(d for d in defs if d not in named)]


def facts(index: CodeIndex, part: QuestionPart) -> list[str]:
    """The compact, index-checked facts for one part: ``path:line: what it shows``."""
    target = target_of(index, part)
    if target is None:
        return []
    d, out = target.definition, []
    where = d.where  # the def or class line itself, not a decorator above it
    if target.param is not None:
        p = target.param
        out.append(f"{d.path}:{target.line}: parameter {p.name} of {d.qualname} "
                   f"(defined at {d.where}): annotation {p.annotation or 'none'}, "
                   f"default {p.default if p.default is not None else 'none (required)'}")  # fmt: skip
        sub = substitute(index, d, p.name) if p.default in (None, "None") else None
        if sub is not None:
            out.append(sub.fact)
    else:
        out.append(f"{where}: {d.kind} {d.qualname} is defined here: {d.signature[:160]}")
    if (named := literal_constant(index, target.default or "")) is not None:
        out.append(f"{named.where}: {named.name} = {named.value}")
    if d.kind is Kind.CLASS and part.kind in (PartKind.BASE, PartKind.LOCATION):
        out.append(f"{d.where}: bases of {d.name}: {', '.join(d.bases) or 'none (object)'}")
    if target.param is None and target.annotation:
        what = "return annotation" if d.kind in _CALLABLE else "annotation"
        out.append(f"{d.where}: {what} of {d.qualname}: {target.annotation}")
    if (
        target.default is None
        and d.kind not in _CALLABLE
        and part.kind in _VALUES
        and UNSET.search(part.text)
    ):
        unset = unset_of(index, d.name)
        if unset is not None:
            out.append(f"{unset.path}:{unset.line}: when {d.name} is not set, the code "
                       f"reads it as {unset.expr}")  # fmt: skip
    if part.kind in _VALUES and target.default is None and d.kind in _CALLABLE:
        out += [r.fact for r in read_values(index, d, part)[:3]]
    if part.kind is PartKind.MEMBERS:
        out += _member_facts(index, d)
    if part.kind in (PartKind.YES_NO, PartKind.BEHAVIOUR):
        out += [f for t in case_tests(index, d, part.text)[:3] for f in t.fact(index)]
        if (raised := case_raise(index, d, part.case)) is not None:
            out.append(raised.fact())
        out += _deciding_facts(index, d, part)
    return out


def unset_of(index: CodeIndex, name: str) -> Substitute | None:
    """:func:`unset_default` for ``index``'s tree, read once per index and name.

    It scans every file of the tree, and a run asks for the same facts several times (the
    first round, the shortcut test, the drafts, the evidence); the memo goes with the index.
    """
    memo = _UNSET_MEMO.setdefault(index, {})
    if name not in memo:
        memo[name] = unset_default(Tree(str(index.root)), name)
    return memo[name]


def _deciding_facts(index: CodeIndex, d: Definition, part: QuestionPart) -> list[str]:
    """The body lines that decide a yes/no or behaviour part.

    The target's own when it is a function, else those of the functions that decide it (a
    class's methods, an attribute's users), the two best first, each one's lines in file order.
    """
    bodies = [d] if d.kind in _CALLABLE else deciding(index, part)
    scored = [(fn, deciding_lines(index, fn, part.text, limit=8)) for fn in bodies[:8]]
    scored.sort(key=lambda s: -sum(hits for _, hits in s[1]))
    out = []
    for fn, lines in scored[:2] if d.kind not in _CALLABLE else scored:
        if fn is not d:
            out.append(f"{fn.where}: {fn.kind} {fn.qualname}, which uses it:")
        out += [f"{fn.path}:{n}: {index.line_text(fn.path, n)}" for n, _ in lines]
    return out


def _question_terms(text: str) -> list[str]:
    """The words of a question that code can contain: names, quoted text, content words."""
    quoted = [a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", text)]
    words = re.findall(r"[A-Za-z_][\w]*", re.sub(r"'[^']*'|\"[^\"]*\"", " ", text))
    out = [w.lower() for w in [*quoted, *words] if len(w) > 2 and w.lower() not in STOP_WORDS]
    return list(dict.fromkeys(out))


def deciding_lines(
    index: CodeIndex, d: Definition, question: str, limit: int = 12
) -> list[tuple[int, int]]:
    """The body lines of ``d`` most likely to decide ``question``, in file order, with their hits.

    A long body's first lines are rarely the ones that decide a yes/no ("does main catch
    Abort?"): lines are ranked by how many of the question's terms they contain (a term in a
    line as a word or a 5-letter stem: ``upper-case`` finds ``.upper()``), and the block
    structure around the best ones (the ``if``/``except`` line above a hit) comes with them.
    With no term in the body, its first lines. Each line comes as ``(line, hits)``.
    """
    terms = [t for t in _question_terms(question) if t != d.name.lower()]
    stems = [t[:5] if len(t) > 5 else t for t in terms]
    code = body_lines(index, d)
    hits = {n: sum(s in index.line_text(d.path, n).lower() for s in stems) for n in code}
    ranked = sorted((n for n in code if hits[n] > 0), key=lambda n: (-hits[n], n))
    picked: list[int] = [] if ranked else code[:limit]
    for n in ranked:
        above = next((m for m in reversed(code) if m < n), None)
        for m in (above, n):
            if m is not None and m not in picked:
                picked.append(m)
        if len(picked) >= limit:
            break
    return [(n, hits[n]) for n in sorted(picked[:limit])]


def _member_facts(index: CodeIndex, d: Definition) -> list[str]:
    func = d if d.kind in _CALLABLE else index.constructor(d) if d.kind is Kind.CLASS else None
    out = []
    if func is not None:
        params = [p.name for p in func.parameters if p.name not in ("self", "cls")]
        out.append(f"{func.where}: parameters of {func.qualname}: {', '.join(params) or 'none'}")
    if d.kind is Kind.CLASS:
        names = [m.name for m in index.members(d.dotted) if m.kind is not Kind.METHOD][:20]
        out.append(f"{d.where}: attributes and fields of {d.name}: {', '.join(names) or 'none'}")
    return out


def deciding(index: CodeIndex, part: QuestionPart) -> list[Definition]:
    """Functions whose body can decide the part: its subjects, their methods, or their users."""
    out: list[Definition] = []
    for name in part.subjects:
        for d in lookup(index, name)[:2]:
            if d.kind in (Kind.FUNCTION, Kind.METHOD):
                out.append(d)
            elif d.kind is Kind.CLASS:
                out += [m for m in index.members(d.dotted) if m.kind is Kind.METHOD]
            elif d.kind is not Kind.MODULE:
                out += _users(index, d.name)
    return list({(d.path, d.line): d for d in out}.values())


def _users(index: CodeIndex, name: str) -> list[Definition]:
    spots = {(r.path, r.line) for r in index.references(name, limit=40) if r.kind == "use"}
    return [d for d in index if d.kind in (Kind.FUNCTION, Kind.METHOD)
            and any(p == d.path and d.line < n <= d.end_line for p, n in spots)]  # fmt: skip
