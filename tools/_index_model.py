"""The code index's values: definitions, parameters, re-export sites, and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "Definition", "Kind", "Parameter", "ReExport", "Reference", "Registration", "Skipped",
    "UnknownName",
]  # fmt: skip


class Kind(StrEnum):
    """What a :class:`Definition` defines."""

    MODULE = "module"
    MODULE_CONSTANT = "module_constant"
    CLASS = "class"
    FUNCTION = "function"
    METHOD = "method"
    ATTRIBUTE = "attribute"  # ``self.x = ...`` inside a method
    FIELD = "field"  # a dataclass/attrs/NamedTuple/pydantic/TypedDict field
    CLASS_ATTRIBUTE = "class_attribute"  # any other name bound in a class body


class Parameter(NamedTuple):
    """One parameter as written: ``*args`` and ``**kwargs`` keep their stars in ``name``."""

    name: str
    annotation: str | None = None
    default: str | None = None


class ReExport(NamedTuple):
    """An import site that makes a definition reachable under another module's name.

    Attributes:
        public_name: the dotted name it is reachable as, e.g. ``graph.StateGraph``.
        path: the file that re-exports it, relative to the root (usually an ``__init__.py``).
        line: the line of that import statement.
        in_all: whether the re-exporting module lists the name in ``__all__``.
    """

    public_name: str
    path: str
    line: int
    in_all: bool


class Registration(NamedTuple):
    """A definition reachable by a string key: ``FILTERS = {"wordwrap": do_wordwrap}``.

    Attributes:
        container: the mapping as written, e.g. ``FILTERS`` or ``self.globals``.
        key: the string, e.g. ``wordwrap``.
        path: the file of the registering line, relative to the root.
        line: the line of the key.
        definition: what the value resolves to in that file.
    """

    container: str
    key: str
    path: str
    line: int
    definition: Definition


class Skipped(NamedTuple):
    """A ``.py`` file the index could not read or parse, and why."""

    path: str
    reason: str


class UnknownName(LookupError):
    """No definition in the tree matches a name.

    Attributes:
        name: the name as asked.
        close: similar names that are defined, best first.
        imported_from: ``(path, line, module)`` sites that import ``name`` from outside the tree.
    """

    def __init__(self, name: str, close: list[str], imported_from: list[tuple[str, int, str]]):
        self.name, self.close, self.imported_from = name, close, imported_from
        hint = f" Close names: {', '.join(close)}." if close else ""
        if imported_from:
            path, line, module = imported_from[0]
            hint += f" It is imported from {module!r} (outside this tree) at {path}:{line}."
        super().__init__(f"no definition of {name!r} in this tree.{hint}")


class Reference(NamedTuple):
    """One use of a name: ``kind`` is ``use``, ``import`` (an import site) or ``definition``."""

    path: str
    line: int
    text: str
    kind: str


@dataclass(frozen=True)
class Definition:
    """One named thing defined in the tree, located by its defining line (never an import site).

    Attributes:
        qualname: name inside its module, e.g. ``Session.request``; a module's is its dotted name.
        name: the last part of ``qualname``.
        kind: what it is (:class:`Kind`).
        module: dotted module name relative to the root, e.g. ``graph.state``.
        path: file relative to the root, e.g. ``graph/state.py``.
        line: the ``def``/``class``/assignment line (decorators are above it).
        end_line: the last line of its span.
        signature: the header as written, on one line, without the trailing colon:
            ``def get(self, key: str, default: int = 0) -> int``, ``class A(B)``, ``X: int = 3``.
        parameters: functions' parameters with annotation and default, as written.
        returns: a function's return annotation.
        bases: a class's bases (and keywords such as ``metaclass=...``) as written.
        decorators: decorator expressions as written, without ``@``.
        annotation: a constant's, field's or attribute's annotation.
        value: source text of a constant's or attribute's right-hand side.
        default: a field's default: the value, or the ``default=`` of ``Field(...)``/``field(...)``.
        summary: the docstring's first paragraph on one line.
        docstring: the whole docstring, cleaned of indentation.
        flavor: for classes: ``dataclass``, ``attrs``, ``namedtuple``, ``pydantic``,
            ``typeddict``, ``enum``, ``exception`` or ``""``.
        members: qualnames of a class's fields, attributes and methods, or a module's names.
        reexported_from: import sites (usually package ``__init__.py`` files) that re-export it.
    """

    qualname: str
    name: str
    kind: Kind
    module: str
    path: str
    line: int
    end_line: int
    signature: str = ""
    parameters: tuple[Parameter, ...] = ()
    returns: str | None = None
    bases: tuple[str, ...] = ()
    decorators: tuple[str, ...] = ()
    annotation: str | None = None
    value: str | None = None
    default: str | None = None
    summary: str = ""
    docstring: str | None = None
    flavor: str = ""
    members: tuple[str, ...] = field(default=())
    reexported_from: tuple[ReExport, ...] = field(default=())

    @property
    def dotted(self) -> str:
        """``module.qualname``, e.g. ``graph.state.StateGraph`` (a module's is its name)."""
        if self.kind is Kind.MODULE or not self.module:
            return self.qualname
        return f"{self.module}.{self.qualname}"

    @property
    def where(self) -> str:
        """``path:line`` of the defining line."""
        return f"{self.path}:{self.line}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict without empty fields (the cache stores these)."""
        data: dict[str, Any] = {}
        for item in _STORED:
            value = getattr(self, item)
            if value not in ((), None, ""):
                data[item] = value
        data["kind"] = str(self.kind)
        if self.parameters:
            data["parameters"] = [list(p) for p in self.parameters]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Definition:
        """Inverse of :meth:`to_json`."""
        values = {k: v for k, v in data.items() if k in _STORED}
        values["kind"] = Kind(values["kind"])
        values["parameters"] = tuple(Parameter(*p) for p in values.get("parameters", ()))
        for name in ("bases", "decorators", "members"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


# reexported_from is left out: it is derived from other files when the index is linked.
_STORED = tuple(f.name for f in fields(Definition) if f.name != "reexported_from")
