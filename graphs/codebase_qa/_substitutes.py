"""What a parameter with no default (or a ``None`` one) becomes when the caller leaves it out.

``Progress(*columns)`` has no default, but its ``__init__`` says ``self.columns = columns or
self.get_default_columns()``, and that method returns four columns: a user asking "which
columns does it get if I pass none" wants those four. :func:`substitute` finds the line of the
body that substitutes a value (``p = p or X``, ``X if p is None else p``, ``if p is None:``
then ``p = X``) and, when ``X`` calls a function the index defines, the names its ``return``
builds. The answer is shown them as facts, and the default check holds the answer to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.graphs.codebase_qa._values import leading_expr, states
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["UNSET", "Substitute", "problem", "stated", "substitute", "unset_default"]

UNSET = re.compile(
    r"\b(?:doesn't|does not|don't|do not|never|isn't|is not|not)\s+(?:set|pass|give|provide)|"
    r"\bunset\b|\bleft out\b|\bwithout\b|\bdefaults?\b",
    re.I,
)
"""A part that asks what an option is when it is not set (``unset_default`` applies)."""


@dataclass(frozen=True)
class Substitute:
    """``line`` of ``path`` sets the parameter to ``expr`` when it is not given.

    ``returned`` is what ``expr``'s function returns (its names and their lines), when ``expr``
    is a call of a function the index defines, e.g. ``self.get_default_columns()``.
    """

    path: str
    line: int
    expr: str
    returned: tuple[tuple[str, int], ...] = ()
    returned_by: Definition | None = None

    @property
    def fact(self) -> str:
        """The fact as the answering model is shown it."""
        text = f"{self.path}:{self.line}: when it is not given, the body uses {self.expr}"
        if self.returned_by is not None:
            names = ", ".join(n for n, _ in self.returned)
            first = self.returned[0][1] if self.returned else self.returned_by.line
            text += (
                f"\n{self.returned_by.path}:{first}: {self.returned_by.qualname} returns {names}"
            )
        return text


def _patterns(name: str) -> list[re.Pattern[str]]:
    p = re.escape(name)
    return [
        re.compile(rf"^(?:self\.)?{p}\s*=\s*{p}\s+or\s+(.+)$"),  # p = p or X
        re.compile(rf"^(?:self\.)?{p}\s*=\s*(.+?)\s+if\s+{p}\s+is\s+None\s+else\s+{p}$"),
        re.compile(rf"^(?:self\.)?{p}\s*=\s*{p}\s+if\s+{p}\s+is\s+not\s+None\s+else\s+(.+)$"),
    ]


def substitute(index: CodeIndex, func: Definition, name: str) -> Substitute | None:
    """Where ``func``'s body substitutes a value for parameter ``name`` left out, or None."""
    if func.kind not in (Kind.FUNCTION, Kind.METHOD):
        return None
    name = name.lstrip("*")
    lines = range(func.line + 1, func.end_line + 1)
    guard = re.compile(rf"^if\s+(?:not\s+{re.escape(name)}|{re.escape(name)}\s+is\s+None)\s*:$")
    for n in lines:
        text = index.line_text(func.path, n).split("  #")[0].strip()
        for pattern in _patterns(name):
            m = pattern.match(text)
            if m:
                return _with_returned(index, func, n, m.group(1).strip())
        if guard.match(text) and n + 1 <= func.end_line:
            then = index.line_text(func.path, n + 1).strip()
            m = re.match(rf"^(?:self\.)?{re.escape(name)}\s*=\s*(.+)$", then)
            if m:
                return _with_returned(index, func, n + 1, m.group(1).strip())
    return None


def unset_default(tree: Tree, name: str) -> Substitute | None:
    """What an option declared without a value reads as when it is not set, or None.

    ``index_errors: bool`` in a ``class Meta`` has no value; the code that reads it says
    ``getattr(meta, "index_errors", True)``: left unset, it is True. Only when every such read
    in the tree agrees on the default (the first one is cited).
    """
    read = re.compile(rf"getattr\(\s*[\w.]+\s*,\s*[\"']{re.escape(name)}[\"']\s*,\s*(.+)$")
    hits = []
    for path, n in tree.find(read):
        m = read.search((tree.lines(path) or [""])[n - 1])
        default = leading_expr(m.group(1), stops=",") if m else None
        if default:
            hits.append(Substitute(path, n, default))
    if not hits or len({h.expr for h in hits}) > 1:
        return None
    return hits[0]


def _with_returned(index: CodeIndex, func: Definition, line: int, expr: str) -> Substitute:
    call = re.fullmatch(r"(?:(?:self|cls|[A-Z]\w*)\.)?([A-Za-z_]\w*)\(\s*\)", expr)
    if call is None:
        return Substitute(func.path, line, expr)
    owner = func.qualname.rsplit(".", 1)[0] if "." in func.qualname else ""
    wanted = [f"{owner}.{call.group(1)}", call.group(1)] if owner else [call.group(1)]
    callee = next(
        (d for w in wanted for d in _defs(index, w) if d.kind in (Kind.FUNCTION, Kind.METHOD)),
        None,
    )
    if callee is None:
        return Substitute(func.path, line, expr)
    return Substitute(func.path, line, expr, _returned_names(index, callee), callee)


def _defs(index: CodeIndex, name: str) -> list[Definition]:
    try:
        return index.find_definition(name)
    except LookupError:
        return []


def _returned_names(index: CodeIndex, d: Definition) -> tuple[tuple[str, int], ...]:
    """The classes or functions a ``return`` of ``d`` calls, each at its line (the first return)."""
    out: dict[str, int] = {}
    inside = False
    depth = 0
    for n in range(d.line + 1, d.end_line + 1):
        text = index.line_text(d.path, n).split("  #")[0]
        if not inside and not re.match(r"\s*return\b", text):
            continue
        inside = True
        for called in re.findall(r"(?<![\w.])([A-Z]\w*)\s*\(", text):
            out.setdefault(called, n)
        depth += text.count("(") + text.count("[") - text.count(")") - text.count("]")
        if depth <= 0:
            break
    return tuple(out.items())


def stated(answer: str, sub: Substitute) -> list[tuple[str, int]]:
    """The substitute's cites the answer bears out: its expression, or every name it returns.

    Empty when the answer states neither.
    """
    if sub.returned and all(re.search(rf"\b{re.escape(n)}\b", answer) for n, _ in sub.returned):
        assert sub.returned_by is not None
        return [(sub.returned_by.path, n) for _, n in sub.returned[:2]]
    if states(answer, sub.expr):
        return [(sub.path, sub.line)]
    return []


def problem(target_name: str, sub: Substitute, said: str) -> str:
    """The reason an answer that states neither the substitute nor what it returns is refused."""
    text = f"{target_name} left out becomes {sub.expr} ({sub.path}:{sub.line})"
    if sub.returned_by is not None and sub.returned:
        names = ", ".join(n for n, _ in sub.returned)
        text += f", which returns {names} ({sub.returned_by.path}:{sub.returned[0][1]})"
    return f"{text}, but the answer says {said}"
