"""Lookups in a tree's code index: the index itself, a name's definitions, a body's lines.

The leaf of the checks' modules: :func:`index_for` builds a tree's
:class:`~tierflow.tools.code_index.CodeIndex` once per process (the index caches on disk);
:func:`lookup` follows a name to its definitions; the rest read what a definition holds.
"""

from __future__ import annotations

import re
from pathlib import Path

from tierflow.graphs.codebase_qa._questions import QuestionPart
from tierflow.tools.code_index import CodeIndex, Definition, Kind, UnknownName

__all__ = [
    "body_lines", "index_for", "is_collection", "is_enum", "listed_in", "literal_constant", "lookup",
]  # fmt: skip

# Root -> (tree state, its index): a changed tree replaces its entry, so a long-lived process
# keeps one index per tree rather than one per state it ever saw.
_INDEXES: dict[str, tuple[tuple[int, int], CodeIndex | None]] = {}
_COLLECTION = re.compile(r"(frozenset|set|tuple|list)?\(?\s*[\[{(]")  # a literal of items
_LITERAL = re.compile(r"-?\d[\d_.]*|[\"'].*[\"']")  # a number or a string, as written


def index_for(root: str) -> CodeIndex | None:
    """The tree's code index (built once per tree state), or None for a tree with no Python."""
    try:
        base = Path(root).resolve()
        files = [
            p
            for p in base.rglob("*.py")
            if not any(s.startswith(".") for s in p.relative_to(base).parts)
        ]
        state = (len(files), max((p.stat().st_mtime_ns for p in files), default=0))
    except (OSError, ValueError):
        return None
    seen = _INDEXES.get(str(base))
    if seen is None or seen[0] != state:
        try:
            built: CodeIndex | None = CodeIndex.build(base) if files else None
        except (OSError, ValueError):
            built = None
        seen = (state, built if built is not None and len(built) else None)
        _INDEXES[str(base)] = seen
    return seen[1]


def lookup(index: CodeIndex, name: str) -> list[Definition]:
    """Definitions of ``name`` (re-exports followed), or [] when the tree defines none."""
    try:
        return index.find_definition(name)
    except UnknownName:
        pass
    # ``attrs.validators.not_`` about a tree whose package is ``attr``: the public package's
    # name is not the tree's, the rest of the path is.
    head, _, rest = name.partition(".")
    if rest and head.islower() and head.isidentifier():
        # ``request.get_json``: an instance named for its class, as users write it.
        try:
            return index.find_definition(f"{head.capitalize()}.{rest}")
        except UnknownName:
            pass
    if rest and not _defines_module(index, head):
        return lookup(index, rest)
    return []


def _defines_module(index: CodeIndex, name: str) -> bool:
    try:
        return any(d.kind is Kind.MODULE for d in index.find_definition(name))
    except UnknownName:
        return False


def literal_constant(index: CodeIndex, expr: str) -> Definition | None:
    """The constant a default names when it holds a literal (``LISTEN_QUEUE = 128``), or None.

    "What backlog does it use" asks for 128: the answer states the value, not only its name.
    """
    if not re.fullmatch(r"[A-Za-z_][\w.]*", expr) or expr in ("True", "False", "None"):
        return None
    for d in lookup(index, expr)[:1]:
        if d.kind in (Kind.MODULE_CONSTANT, Kind.CLASS_ATTRIBUTE) and _LITERAL.fullmatch(
            (d.value or "").strip()
        ):
            return d
    return None


def is_enum(d: Definition) -> bool:
    """Whether ``d`` is an enum class (a base named ``...Enum`` or ``...Flag``)."""
    return d.kind is Kind.CLASS and any(re.search(r"(Enum|Flag)$", b) for b in d.bases)


def is_collection(value: str) -> bool:
    """Whether a value as written is a literal of items (``[...]``, ``frozenset({...})``)."""
    return bool(_COLLECTION.match(value))


def listed_in(
    index: CodeIndex, func: Definition, part: QuestionPart, skip: str = ""
) -> Definition | None:
    """A collection constant the function's body reads, named by words of the part (not ``skip``'s)."""
    words = {w.rstrip("s") for w in re.findall(r"[a-z]{3,}", part.text.lower())}
    words -= {w.rstrip("s") for w in re.findall(r"[a-z]{3,}", skip.lower())}
    text = " ".join(index.line_text(func.path, n) for n in body_lines(index, func))
    for name in sorted(set(re.findall(r"[A-Za-z_]\w*", text))):
        if {w.rstrip("s") for w in name.lower().split("_") if w} & words:
            found = lookup(index, name)[:1]
            if (
                found
                and found[0].kind is Kind.MODULE_CONSTANT
                and _COLLECTION.match(found[0].value or "")
            ):
                return found[0]
    return None


def body_lines(index: CodeIndex, d: Definition) -> list[int]:
    """The lines of a function's body that are code: not its header, not its docstring."""
    start = d.line
    while start < d.end_line and not index.line_text(d.path, start).endswith(":"):
        start += 1
    lines = list(range(start + 1, d.end_line + 1))
    if d.docstring and lines:
        first = index.line_text(d.path, lines[0])
        quote = first[:3] if first[:3] in ('"""', "'''") else first[1:4]
        end = lines[0]
        if not (first.count(quote) >= 2 or first.endswith(quote) and len(first) > 3):
            while end < d.end_line and quote not in index.line_text(d.path, end + 1):
                end += 1
            end += 1
        lines = [n for n in lines if n > end]
    return [n for n in lines if index.line_text(d.path, n) and not
            index.line_text(d.path, n).startswith("#")]  # fmt: skip
