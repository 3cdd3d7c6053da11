"""What a function gives back, for the value checks: returned names followed, other defaults.

``theme = ANSISyntaxTheme(...)`` ... ``return theme`` gives back an ANSISyntaxTheme
(:func:`built_values`); a number that is another parameter's default on the cited ``def``
line ("16 iterations": ``salt_length: int = 16``) is no value of what the question asks
(:func:`other_default`).
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._branches import wrong_branch
from tierflow.graphs.codebase_qa._facts import param_line
from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.graphs.codebase_qa._values import states
from tierflow.tools.code_index import CodeIndex, Definition

__all__ = ["built_values", "concrete", "names_call", "other_default"]


def built_values(
    index: CodeIndex,
    tree: Tree,
    d: Definition,
    body: list[int],
    returns: list[tuple[int, str]],
    question: str,
) -> list[tuple[int, str]]:
    """``returns`` with a returned local name replaced by what the body assigns it.

    An answer that merely names the variable ("theme") states nothing. A returned parameter is
    the caller's own value (``return name``), which no answer states by naming it; it is
    dropped.
    """
    params = {p.name.lstrip("*") for p in d.parameters} | {"self", "cls"}
    lines = tree.lines(d.path) or []
    out: list[tuple[int, str]] = []
    for n, expr in returns:
        if not re.fullmatch(r"[A-Za-z_]\w*", expr) or expr in ("True", "False", "None"):
            out.append((n, expr))
            continue
        if expr in params:
            continue
        sets = [(m, a.group(1).strip()) for m in body if m < n
                and (a := re.match(rf"{expr}\s*(?::[^=]+)?=(?!=)\s*(.+)", index.line_text(d.path, m)))
                and wrong_branch(lines, d.line, m, question) is None]  # fmt: skip
        out += sets or [(n, expr)]
    return out


def other_default(index: CodeIndex, d: Definition, answer: str, question: str) -> str | None:
    """Why the value the answer states is another parameter's default, or None.

    Only a parameter none of whose words the question uses counts: "the default salt length"
    is answered by ``salt_length``'s default, "how many iterations" is not.
    """
    asked = set(re.findall(r"[a-z0-9]+", question.lower()))
    for p in d.parameters:
        if p.default in (None, "None", "True", "False") or not states(answer, p.default):
            continue
        words = {w for w in p.name.lower().strip("*").split("_") if w and w not in STOP_WORDS}
        if words and not words & asked:
            where = f"{d.path}:{param_line(index, d, p.name.lstrip('*'))}"
            return (
                f"{p.default} is the default of {d.qualname}'s {p.name} ({where}), which the "
                "question does not ask about: state the value of what it asks, where the code "
                "sets it"
            )
    return None


def concrete(expr: str) -> bool:
    """A literal, or a call of a class (``ANSISyntaxTheme(...)``): a value an answer can state."""
    literal = re.fullmatch(r"-?\d[\d_.]*|[\"'].*[\"']|True|False|None", expr.strip())
    return bool(literal or re.match(r"(?:[a-z_]\w*\.)*[A-Z]\w*\(", expr.strip()))


def names_call(answer: str, expr: str) -> bool:
    """Whether ``answer`` names the class or function ``expr`` calls (``Foo(...)``: Foo)."""
    m = re.match(r"(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)\(", expr.strip())
    return (
        m is not None and re.search(rf"(?<![\w.]){re.escape(m.group(1))}(?!\w)", answer) is not None
    )
