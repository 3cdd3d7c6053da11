"""The *members* check of :class:`~._index_checks.IndexChecker`: a list, member by member.

Checked against the definition (a function's parameters, a literal's items or keys, a class's
fields and attributes, an enum's members) or its docstring; every one of them is wanted when
the definition enumerates them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tierflow.graphs.codebase_qa._facts import Target, param_line
from tierflow.graphs.codebase_qa._lookup import is_enum
from tierflow.graphs.codebase_qa._tree import Cite
from tierflow.graphs.codebase_qa._yes_no import YesNoChecker
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["MembersChecker", "asks_parameters"]


class MembersChecker(YesNoChecker):
    """A :class:`~._yes_no.YesNoChecker` with the members check (``index`` is set by its subclass)."""

    index: CodeIndex

    def _cited_in(self, path: str, first: int, last: int) -> Cite | None:
        return next((c for c in self.cites if c[0] == path and first <= c[1] <= last), None)

    def members_of(self, target: Target, also: Sequence[Definition] = (), asked: str = "") -> None:
        """Member by member against the definition (all of them when it enumerates them).

        ``also``: more definitions the part asks the members of, taken together with it.
        ``asked``: the part's text. A function's parameters are the list only when it asks for
        parameters ("which keys does f pass on" asks what its body picks): otherwise they are
        not members, and the list must come from the body, cited there.
        """
        d, every = target.definition, [target.definition, *also]
        # a constructor's parameters are what it stores: its attributes ("which attributes does
        # Result document in its __init__"), so they stay its members
        made = d.name not in ("__init__", "__new__") and not _ATTRIBUTES.search(asked.lower())
        if d.kind in (Kind.FUNCTION, Kind.METHOD) and made and asked and not asks_parameters(asked):
            return self._body_list(d)
        expected = [m for x in every for m in (_enumerated(x) or self._enum_members(x))]
        allowed = set(expected) | {m.name for x in every for m in _members(self.index, x)}
        doc = " ".join(x.docstring or "" for x in every)
        low = self.answer.lower()
        said = [w for w in _listed(self.answer) if w.lower() not in self.question.lower()]
        wrong = sorted(w for w in said if w not in allowed and not re.search(rf"\b{re.escape(w)}\b", doc)
                       and not any(self._in_span(x, w) for x in every))  # fmt: skip
        missing = [m for m in expected if m.lower() not in low]
        if not said and not expected:
            self.problems.append(f"the answer names no member of {d.qualname} ({d.where})")
            return
        if wrong or missing:
            why = f"the answer leaves out {', '.join(missing)}" if missing else ""
            if wrong:
                why += ("; " if why else "") + f"{', '.join(wrong)} is not among them"
            shown = ", ".join(expected[:12]) or "its members"
            self.problems.append(f"{d.qualname} ({d.where}) has {shown}: {why}")
            return
        cites = [self._cited_in(x.path, x.line - len(x.decorators), x.end_line) for x in every]
        cite = next((c for c in cites if c is not None), None)
        if cite is None:
            where = ", ".join(f"{x.qualname} ({x.path}:{x.line}-{x.end_line})" for x in every)
            self.problems.append(f"no cited line is in {where}")
            return
        for c in dict.fromkeys(c for c in cites if c is not None):
            self.support(f"the members of {d.qualname}", c)
        for line in self._member_lines(d, said):  # cite the members themselves, as well
            self.support(f"a member of {d.qualname}", (d.path, line))

    def _body_list(self, d: Definition) -> None:
        """A list a function's body makes: no parameter of it, every item in the cited body."""
        said = [w for w in _listed(self.answer) if w.lower() not in self.question.lower()]
        params = set(_enumerated(d))
        lines = (self.tree.lines(d.path) or [])[d.line : d.end_line]
        code = "\n".join(lines)

        def used(c: Cite) -> bool:  # a cited line binding a name the body reads
            bound = re.match(r"\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=", self.tree.text(c) or "")
            return bound is not None and re.search(rf"\b{bound[1]}\b", code) is not None

        body = [c for c in self.cites
                if c[0] == d.path and d.line < c[1] <= d.end_line or used(c)]  # fmt: skip
        shown = " ".join(self.tree.text(c) or "" for c in body)
        if not said:
            self.problems.append(f"the answer names nothing that the body of {d.qualname} "
                                 f"({d.path}:{d.line}-{d.end_line}) lists")  # fmt: skip
        elif taken := [w for w in said if w in params]:
            self.problems.append(f"{', '.join(taken)} is a parameter of {d.qualname} ({d.where}), "
                                 "not an item of the list asked; cite the body's lines that "
                                 "make the list")  # fmt: skip
        elif not body or (absent := [w for w in said if w not in shown]):
            where = f"{d.path}:{d.line + 1}-{d.end_line}"
            what = f"{', '.join(absent)} is not in the cited lines" if body else "no cited line is"
            self.problems.append(f"{what} in the body of {d.qualname} ({where})")
        else:
            for c in body:
                self.support(f"a line of {d.qualname}'s body", c)

    def _enum_members(self, d: Definition) -> list[str]:
        """An enum's members: every attribute its class body binds (they are all of them)."""
        if not is_enum(d):
            return []
        return [m.name for m in _members(self.index, d)
                if m.kind is not Kind.METHOD and not m.name.startswith("_")]  # fmt: skip

    def _member_lines(self, d: Definition, said: list[str]) -> list[int]:
        """The lines of the members the answer lists (at most three): fields, parameters."""
        if d.kind in (Kind.FUNCTION, Kind.METHOD):
            spots = [param_line(self.index, d, w) for w in said[:3] if w in _enumerated(d)]
            return [n for n in dict.fromkeys(spots) if n != d.line]
        named = [m.line for m in _members(self.index, d)
                 if re.search(rf"(?<![\w.]){re.escape(m.name)}\b", self.answer)]  # fmt: skip
        return list(dict.fromkeys(named))[:3]

    def _in_span(self, d: Definition, word: str) -> bool:
        return any(word in self.index.line_text(d.path, n) for n in range(d.line, d.end_line + 1))


def _members(index: CodeIndex, d: Definition) -> list[Definition]:
    try:
        return index.members(d.dotted) if d.kind in (Kind.CLASS, Kind.MODULE) else []
    except LookupError:
        return []


# The noun a list question asks for ("which event dict keys does ...": keys).
_HEAD = re.compile(
    r"\b(?:which|what)\s+(?:[\w-]+\s+){0,3}?(?!(?:does|has|is|was|this|its)\b)(\w+s)\b"
)
_ATTRIBUTES = re.compile(r"\b(?:attributes?|fields?)\b")
_PARAMETERS = re.compile(r"\b(?:parameters?|arguments?|args|kwargs|options|signature)\b")


def asks_parameters(text: str) -> bool:
    """Whether a list question asks for parameters (its head noun, else any mention)."""
    low = text.lower()
    head = _HEAD.search(low)
    return bool(_PARAMETERS.fullmatch(head[1]) if head else _PARAMETERS.search(low))


def _enumerated(d: Definition) -> list[str]:
    """What a definition lists: a function's parameters, or a literal's keys or items."""
    if d.kind in (Kind.FUNCTION, Kind.METHOD):
        return [p.name.lstrip("*") for p in d.parameters if p.name not in ("self", "cls")]
    value = d.value or ""
    keys = re.findall(r"[\"']([^\"']+)[\"']\s*:", value)
    return keys or re.findall(r"[\"']([^\"']+)[\"']", value) or _items(value)


def _items(value: str) -> list[str]:
    """The items of a collection literal of names: ``frozenset({type(None), bool, int})``."""
    m = re.fullmatch(
        r"(?:frozenset|set|tuple|list)?\(?\s*[\[{(](.*)[\]})]\s*\)?", value.strip(), re.S
    )
    if not m:
        return []
    out, depth, cur = [], 0, ""
    for ch in m.group(1):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return [i for i in out if re.fullmatch(r"[\w.]+(?:\([\w.]*\))?", i)]


def _listed(answer: str) -> list[str]:
    """The items an answer lists: quoted, backticked or code-like (snake_case, CamelCase)."""
    out = [a or b or c for a, b, c in re.findall(r"`([^`]+)`|\"([^\"]+)\"|'([^']+)'", answer)]
    bare = re.sub(r"`[^`]*`|\"[^\"]*\"|'[^']*'", " ", answer)
    out += [w for w in re.findall(r"[A-Za-z_]\w*", bare)
            if "_" in w.strip("_") or re.search(r"[a-z][A-Z]", w)]  # fmt: skip
    return list(dict.fromkeys(w.strip() for w in out if w.strip()))
