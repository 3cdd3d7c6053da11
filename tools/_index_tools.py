"""The code index as LangChain tools: compact ``path:line text`` answers a small model can copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import Field

from tierflow.tools._args import ToolArgs
from tierflow.tools._index_model import Definition, Kind, UnknownName

if TYPE_CHECKING:
    from tierflow.tools.code_index import CodeIndex

__all__ = ["make_tools"]

_TEXT_CHARS = 200
_SIGNATURE_CHARS = 1200


class _NameArgs(ToolArgs):
    name: str = Field(
        description="A name as written in code: 'Session', 'Session.request' or 'module.Session'."
    )


def _cut(text: str, cap: int = _TEXT_CHARS) -> str:
    return text if len(text) <= cap else f"{text[: cap - 4]} ..."


def _head(index: CodeIndex, found: Definition) -> str:
    """``path:line <source line>``: what the model cites."""
    text = index.line_text(found.path, found.line) or found.signature
    start = text.rstrip(":").rstrip("([{ ")
    if found.signature.startswith(start) and len(found.signature) > len(text):
        # A header or statement over several lines: its first line is cut mid-way, so show it
        # folded onto one line (it still starts with the line's text).
        text = found.signature + (
            ":" if found.kind in (Kind.CLASS, Kind.FUNCTION, Kind.METHOD) else ""
        )
    if found.kind is Kind.MODULE:
        text = f"module {found.qualname}" + (f": {found.summary}" if found.summary else "")
    return _cut(f"{found.where} {text}")


def _about(found: Definition) -> str:
    """One indented line saying what the definition is and where it is re-exported."""
    owner = found.qualname.rsplit(".", 1)[0] if "." in found.qualname else ""
    kind = str(found.kind).replace("_", " ")
    where = f"{kind} {found.qualname}" if not owner else f"{kind} {found.name} of {owner}"
    text = f"  {where} in {found.module}, lines {found.line}-{found.end_line}"
    if found.flavor:
        text += f" ({found.flavor})"
    if found.reexported_from:
        sites = ", ".join(f"{r.public_name} ({r.path}:{r.line})" for r in found.reexported_from[:3])
        text += f"; re-exported as {sites}"
    return _cut(text)


def _unknown(error: UnknownName) -> ToolException:
    close = ", ".join(repr(c) for c in error.close[:5])
    parts = [f"no definition of {error.name!r} in the code index of this tree."]
    if error.imported_from:
        path, line, module = error.imported_from[0]
        parts.append(f"It is imported from {module!r}, outside this tree ({path}:{line}).")
    if close:
        parts.append(f"Close names: {close}; call this tool again with one of them.")
    parts.append(
        f"Or grep({error.name.rsplit('.', 1)[-1]!r}) to search the text: the index covers .py files only."
    )
    return ToolException(" ".join(parts))


def _find(index: CodeIndex, limit: int, name: str) -> str:
    found = index.find_definition(name)
    lines: list[str] = []
    for hit in found[:limit]:
        lines += [_head(index, hit), _about(hit)]
    if len(found) > limit:
        lines.append(
            f"... {len(found) - limit} more definitions named {name!r}; qualify it, e.g. 'Class.{name}'"
        )
    return "\n".join(lines)


def _signature(index: CodeIndex, name: str) -> str:
    found = index.find_definition(name)[0]
    lines = [_head(index, found)]
    if found.kind is Kind.CLASS:
        init = index.constructor(found)
        if init is not None:
            lines.append(_head(index, init))
            found = init
        else:
            fields = [m for m in index.members(found.dotted) if m.kind is Kind.FIELD]
            lines.append(f"  signature: {_cut(index.signature(found.dotted))}")
            lines += [_cut(f"{f.where} {index.line_text(f.path, f.line)}") for f in fields]
            return "\n".join(lines)
    if found.kind in (Kind.FUNCTION, Kind.METHOD):
        if found.signature not in lines[-1]:  # the line above was cut: show it whole here
            lines.append(f"  signature: {_cut(found.signature, _SIGNATURE_CHARS)}")
        params = list(found.parameters)
        if found.kind is Kind.METHOD and params and params[0].name in ("self", "cls"):
            params = params[1:]
        for p in params:
            note = f": {p.annotation}" if p.annotation else ""
            default = f" = {p.default}" if p.default is not None else " (no default)"
            if p.name.startswith("*"):
                default = ""
            lines.append(_cut(f"  parameter {p.name}{note}{default}"))
        if found.returns:
            lines.append(f"  returns {found.returns}")
    else:
        lines.append(_about(found))
        if found.annotation:
            lines.append(f"  annotation: {found.annotation}")
        value = found.default if found.kind is Kind.FIELD else found.value
        if value is not None:
            lines.append(_cut(f"  {'default' if found.kind is Kind.FIELD else 'value'}: {value}"))
    return "\n".join(lines)


def _bases(index: CodeIndex, name: str) -> str:
    klass = index.find_class(name)
    lines = [_head(index, klass), f"  bases as written: {', '.join(klass.bases) or '(none)'}"]
    for base in klass.bases:
        if "=" in base:
            continue
        found = index.base_definition(klass, base)
        if found is None:
            head = base.split("[", 1)[0].split(".", 1)[0]
            site = index.import_site(klass.path, head)
            origin = f" (imported from {site[1]} at {klass.path}:{site[0]})" if site else ""
            lines.append(_cut(f"  {base}: not defined in this tree{origin}"))
        else:
            lines.append(_cut(f"  {base} -> {_head(index, found)}"))
    chain = index.ancestors(klass.dotted)
    if chain:
        lines.append(
            "  ancestors in this tree: " + ", ".join(f"{a.name} ({a.where})" for a in chain)
        )
    return "\n".join(lines)


def _docstring(index: CodeIndex, limit: int, name: str) -> str:
    found = index.find_definition(name)[0]
    lines = [_head(index, found)]
    if not found.docstring:
        lines.append(
            f"  no docstring; read_file({found.path!r}, start_line={found.line}) shows the code"
        )
        return "\n".join(lines)
    doc = found.docstring.split("\n")
    lines += [f"  {line}".rstrip() for line in doc[:limit]]
    if len(doc) > limit:
        lines.append(
            f"  ... {len(doc) - limit} more docstring lines; read_file({found.path!r}, start_line={found.line})"
        )
    return "\n".join(lines)


_GROUPS = [
    ("fields", (Kind.FIELD,)),
    ("class attributes", (Kind.CLASS_ATTRIBUTE,)),
    ("instance attributes", (Kind.ATTRIBUTE,)),
    ("methods", (Kind.METHOD,)),
    ("classes", (Kind.CLASS,)),
    ("functions", (Kind.FUNCTION,)),
    ("constants", (Kind.MODULE_CONSTANT,)),
    ("modules", (Kind.MODULE,)),
]


def _members(index: CodeIndex, limit: int, name: str) -> str:
    found = index.find_definition(name)[0]
    if found.kind not in (Kind.CLASS, Kind.MODULE):
        raise ToolException(
            f"{name!r} is a {found.kind} at {found.where}, not a class or module; members lists "
            "a class's fields, attributes and methods or a module's names. Use signature instead."
        )
    members = index.members(found.dotted)
    lines = [_head(index, found)]
    if not members:
        lines.append("  no members found")
    shown = 0
    for title, kinds in _GROUPS:
        group = [m for m in members if m.kind in kinds]
        if not group or shown >= limit:
            continue
        lines.append(f"{title}:")
        for member in group[: limit - shown]:
            owner = member.qualname.rsplit(".", 1)[0]
            inherited = (
                f"  (inherited from {owner})"
                if found.kind is Kind.CLASS and owner != found.qualname
                else ""
            )
            lines.append(_cut(f"{_head(index, member)}{inherited}"))
        shown += len(group)
    if len(members) > limit:
        lines.append(f"... {len(members) - limit} more members")
    return "\n".join(lines)


def _references(index: CodeIndex, limit: int, name: str) -> str:
    found = index.references(name, limit=None)
    if not found:
        index.find_definition(name)  # an unknown name fails here, with close names
    target = name.strip().rsplit(".", 1)[-1]
    files = len({r.path for r in found})
    counted = f"{len(found)} reference{'s' * (len(found) != 1)} to {target!r} in {files} file{'s' * (files != 1)}"
    lines = [f"{counted} ([import] = import site):"]
    for ref in found[:limit]:
        label = {"import": "[import] ", "definition": "[definition] "}.get(ref.kind, "")
        lines.append(_cut(f"{ref.path}:{ref.line} {label}{ref.text}"))
    if len(found) > limit:
        lines.append(f"... {len(found) - limit} more; grep({target!r}, path=...) narrows by folder")
    return "\n".join(lines)


def make_tools(
    get_index: Callable[[], CodeIndex], max_matches: int, max_lines: int
) -> list[BaseTool]:
    """The six index tools over one (lazily built) index; see ``code_index.index_tools``."""

    def guarded(run: Callable[[str], str]) -> Callable[[str], str]:
        def call(name: str) -> str:
            if not name or not name.strip():
                raise ToolException(
                    "name is empty; give a class, function or constant name, e.g. 'Session'."
                )
            try:
                return run(name)
            except UnknownName as error:
                raise _unknown(error) from None

        return call

    specs: list[tuple[str, Callable[[str], str], str]] = [
        ("find_definition", lambda n: _find(get_index(), max_matches, n),
         "Find where a class, function, method, constant or field is defined (not imported). "
         "Returns 'path:LINE source line' lines."),
        ("signature", lambda n: _signature(get_index(), n),
         "Show a function's or class constructor's signature with every parameter's type and default, "
         "or a field's or constant's type and value."),
        ("class_bases", lambda n: _bases(get_index(), n),
         "Show the base classes of a class as written, and where each base is defined."),
        ("docstring", lambda n: _docstring(get_index(), max_lines, n),
         "Show the docstring of a class, function, method, module, field or constant."),
        ("references", lambda n: _references(get_index(), max_lines, n),
         "List where a name is used or imported. Returns 'path:LINE source line' lines."),
        ("members", lambda n: _members(get_index(), max_lines, n),
         "List a class's fields, attributes and methods (with inherited ones), or a module's names."),
    ]  # fmt: skip
    return [
        StructuredTool.from_function(
            guarded(run), name=tool, description=text, args_schema=_NameArgs
        )
        for tool, run, text in specs
    ]
