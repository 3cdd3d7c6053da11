"""Settings a tree declares in a dict of upper-case keys: ``default_config = {"KEY": value}``.

"I mark the session permanent and never touch the config. How long will the session cookie
stay valid?" is ``"PERMANENT_SESSION_LIFETIME": timedelta(days=31)`` in ``Flask.default_config``:
no definition holds it, a dict literal's key does. :func:`settings` reads every dict literal
with three or more upper-case string keys bound at module or class level (once per index);
:func:`setting_for` picks the key whose every word the part says (its setting-up statements
included; "how long" says time, lifetime, age, ...; all but one of a key of four words or
more), when one key has the most such words.
:func:`as_definition` makes it a definition the value checks read like any other.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._questions import QuestionPart
from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["Setting", "as_definition", "setting_for", "settings"]

_KEY = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")  # two words at least: ``SESSION_COOKIE_NAME``
_MEMO: WeakKeyDictionary[CodeIndex, list[Setting]] = WeakKeyDictionary()
# How a question asks for a kind of setting, and the words its key says it with.
_ASKED_AS = (
    (
        r"\bhow long\b|\bexpire|\bvalid\b",
        {"lifetime", "time", "timeout", "age", "expires", "duration"},
    ),
    (
        r"\bhow (big|large|many bytes)\b|\btoo (big|large)\b|\bsize\b",
        {"max", "size", "length", "limit"},
    ),
)


@dataclass(frozen=True)
class Setting:
    """One key of a settings dict, its value as written, and where the key is."""

    owner: str  # ``Flask.default_config``
    key: str
    value: str
    path: str
    line: int


def settings(index: CodeIndex) -> list[Setting]:
    """Every upper-case key of the tree's module- and class-level settings dicts."""
    if index not in _MEMO:
        tree = Tree(str(index.root))
        found: list[Setting] = []
        for path in sorted({d.path for d in index}):
            lines = tree.lines(path)
            try:
                module = ast.parse("\n".join(lines or []))
            except (SyntaxError, ValueError):
                continue
            found += _in_body(module.body, "", path)
            for node in ast.walk(module):
                if isinstance(node, ast.ClassDef):
                    found += _in_body(node.body, node.name, path)
        _MEMO[index] = found
    return _MEMO[index]


def _in_body(body: list[ast.stmt], owner: str, path: str) -> list[Setting]:
    out: list[Setting] = []
    for stmt in body:
        if not isinstance(stmt, ast.Assign | ast.AnnAssign) or stmt.value is None:
            continue
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        name = ".".join(x for x in (owner, ast.unparse(target)) if x)
        for node in ast.walk(stmt.value):
            if not isinstance(node, ast.Dict):
                continue
            keys = [
                k.value
                for k in node.keys
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            ]
            if len(keys) < 3 or not all(_KEY.fullmatch(k) or k.isupper() for k in keys):
                continue
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    out.append(Setting(name, k.value, ast.unparse(v), path, k.lineno))
    return out


def setting_for(index: CodeIndex, part: QuestionPart) -> Setting | None:
    """The setting whose key's every word (two or more) the part says, when one has the most."""
    text = part.case.lower()
    said = {w.removesuffix("s") for w in re.findall(r"[a-z0-9]+", text)}
    for pattern, implied in _ASKED_AS:
        if re.search(pattern, text):
            said |= implied
    scored = []
    for s in settings(index):
        words = {w.lower().removesuffix("s") for w in s.key.split("_") if w}
        # every word, or all but one of four or more: "how large can a form field be" is
        # MAX_FORM_MEMORY_SIZE without "memory"
        if len(words) >= 2 and len(words - said) <= (1 if len(words) >= 4 else 0):
            scored.append((len(words & said), s))
    scored.sort(key=lambda x: -x[0])
    if not scored or (
        len(scored) > 1 and scored[1][0] == scored[0][0] and scored[1][1].key != scored[0][1].key
    ):
        return None
    return scored[0][1]


def as_definition(s: Setting) -> Definition:
    """The setting as a definition: ``Flask.default_config["KEY"]``, valued as written."""
    return Definition(qualname=f'{s.owner}["{s.key}"]', name=s.key, kind=Kind.CLASS_ATTRIBUTE,
                      module="", path=s.path, line=s.line, end_line=s.line,
                      signature=f'"{s.key}": {s.value}', value=s.value)  # fmt: skip
