"""What a class or signature declares, read from its header: flavor, parameters, field defaults."""

from __future__ import annotations

import ast

from tierflow.tools._index_model import Parameter
from tierflow.tools._index_source import Source

__all__ = [
    "FIELD_FLAVORS",
    "INHERITED_FLAVORS",
    "field_default",
    "flavor_of",
    "parameters",
    "plain",
]

FIELD_FLAVORS = frozenset({"dataclass", "attrs", "namedtuple", "pydantic", "typeddict"})
# Flavors a subclass inherits from its base (a dataclass's subclass needs its own decorator).
INHERITED_FLAVORS = frozenset({"pydantic", "typeddict", "enum", "exception", "attrs"})
_BASE_FLAVORS = {
    "NamedTuple": "namedtuple",
    "TypedDict": "typeddict",
    "BaseModel": "pydantic",
    "BaseSettings": "pydantic",
    "RootModel": "pydantic",
    "Enum": "enum",
    "IntEnum": "enum",
    "StrEnum": "enum",
    "Flag": "enum",
    "IntFlag": "enum",
    "Exception": "exception",
    "BaseException": "exception",
}
_ATTRS_DECORATORS = {
    "attr.s",
    "attr.attrs",
    "attrs.define",
    "attrs.frozen",
    "attrs.mutable",
    "attr.define",
    "attr.frozen",
    "attr.mutable",
    "define",
    "frozen",
    "mutable",
}
_FIELD_CALLS = {"field", "Field", "ib", "attrib", "PrivateAttr"}


def plain(expr: str) -> str:
    """``dataclasses.dataclass(frozen=True)`` -> ``dataclasses.dataclass``; ``A[T]`` -> ``A``."""
    return expr.split("(", 1)[0].split("[", 1)[0].strip()


def flavor_of(bases: list[str], decorators: list[str], known: dict[str, str]) -> str:
    """What kind of class a header declares, from its decorators, bases and known base flavors."""
    for deco in map(plain, decorators):
        if deco.rsplit(".", 1)[-1] == "dataclass":
            return "dataclass"
        if deco in _ATTRS_DECORATORS:
            return "attrs"
    for base in map(plain, bases):
        last = base.rsplit(".", 1)[-1]
        if last in _BASE_FLAVORS:
            return _BASE_FLAVORS[last]
        if known.get(base) in INHERITED_FLAVORS:
            return known[base]
        if last.endswith(("Error", "Exception", "Warning")):
            return "exception"
    return ""


def parameters(src: Source, args: ast.arguments) -> tuple[Parameter, ...]:
    def one(arg: ast.arg, default: ast.expr | None, star: str = "") -> Parameter:
        note = src.segment(arg.annotation) if arg.annotation else None
        return Parameter(star + arg.arg, note, src.segment(default) if default else None)

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    out = [one(a, d) for a, d in zip(positional, [*defaults, *args.defaults], strict=True)]
    if args.vararg:
        out.append(one(args.vararg, None, "*"))
    out += [one(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        out.append(one(args.kwarg, None, "**"))
    return tuple(out)


def field_default(src: Source, value: ast.expr | None) -> str | None:
    """A field's default: the value itself, or what ``Field(...)``/``field(...)`` declares."""
    if value is None:
        return None
    if not (
        isinstance(value, ast.Call)
        and plain(src.segment(value.func)).rsplit(".", 1)[-1] in _FIELD_CALLS
    ):
        return src.segment(value)
    for kw in value.keywords:
        if kw.arg == "default":
            return src.segment(kw.value)
        if kw.arg in ("default_factory", "factory"):
            return f"{kw.arg}={src.segment(kw.value)}"
    name = plain(src.segment(value.func)).rsplit(".", 1)[-1]
    if value.args and name != "field":
        first = value.args[0]
        is_required = isinstance(first, ast.Constant) and first.value is Ellipsis
        return None if is_required else src.segment(first)
    return None
