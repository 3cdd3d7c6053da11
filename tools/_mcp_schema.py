"""An MCP tool's JSON schema in tierflow's terms: argument checks, forced-mode fields, result text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, Field, create_model

__all__ = ["args_model", "checked_args", "result_text", "signature"]

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict[str, Any],
}
_MAX_PROBLEMS = 3


def _types_of(schema: Mapping[str, Any]) -> list[str]:
    """The JSON types a (sub)schema accepts: ``type`` (one or a list) or each ``anyOf`` branch."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    return [t for b in branches if isinstance(b, Mapping) for t in _types_of(b)]


def _annotation(schema: Mapping[str, Any]) -> Any:
    """A Python type for a property's schema; ``Any`` where JSON Schema says more than types."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str | int | bool) for v in enum):
        return Literal[tuple(enum)]  # type: ignore[valid-type]
    kinds = [k for k in _types_of(schema) if k != "null"]
    if len(kinds) != 1:
        return Any
    if kinds[0] == "array":
        items = schema.get("items")
        return list[_annotation(items)] if isinstance(items, Mapping) else list[Any]  # type: ignore[misc]
    return _TYPES.get(kinds[0], Any)


def args_model(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model of the tool's top-level arguments, for schema-forced mode (small models).

    Optional arguments accept ``null`` (small models send it for "the default"; it is dropped
    before the call). Nested constraints are left to :func:`checked_args`, which checks each
    call against the server's own schema. A property whose name pydantic reserves is left out.
    """
    required = set(schema.get("required") or ())
    fields: dict[str, Any] = {}
    for prop, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping) or prop.startswith("_") or hasattr(BaseModel, prop):
            continue
        kind = _annotation(sub)
        info = Field(description=sub.get("description"))
        if prop in required:
            fields[prop] = (kind, info)
        else:
            fields[prop] = (kind | None, Field(sub.get("default"), description=info.description))
    return create_model(f"{name}_args", **fields)  # type: ignore[call-overload, no-any-return]


def signature(schema: Mapping[str, Any]) -> str:
    """The arguments as the model should send them, e.g. ``a: number, b: number, times: integer = 1``."""
    required = set(schema.get("required") or ())
    parts = []
    for prop, sub in (schema.get("properties") or {}).items():
        sub = sub if isinstance(sub, Mapping) else {}
        kinds = [k for k in _types_of(sub) if k != "null"] or ["any"]
        text = f"{prop}: {' or '.join(kinds)}"
        if isinstance(sub.get("enum"), list):
            text = f"{prop}: one of {', '.join(json.dumps(v) for v in sub['enum'])}"
        if prop not in required:
            text += f" = {json.dumps(sub.get('default'))}" if "default" in sub else " (optional)"
        parts.append(text)
    return ", ".join(parts) or "no arguments"


def _problem(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def checked_args(
    schema: Mapping[str, Any], args: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``args`` ready to send (``null`` optional arguments dropped) and what is wrong with them.

    Problems are checked against the tool's JSON schema, plus one check the server may not make:
    an argument the schema does not name (a misspelled optional one would be silently ignored).
    """
    required = set(schema.get("required") or ())
    props = schema.get("properties") or {}
    sent = {k: v for k, v in args.items() if v is not None or k in required}
    problems = []
    if props and schema.get("additionalProperties") in (None, False):
        problems += [f"unknown argument '{k}'" for k in sorted(sent) if k not in props]
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator = validator_cls(dict(schema))
        errors = sorted(validator.iter_errors(sent), key=jsonschema.exceptions.relevance)
    except jsonschema.SchemaError:
        errors = []  # the server's own schema is broken: let the server judge the call
    problems += [_problem(e) for e in errors]
    return sent, problems[:_MAX_PROBLEMS]


def _block_text(block: Any) -> str:
    """One content block as text; binary content is named, not shown."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind == "resource":
        inner = block.resource
        text = getattr(inner, "text", None)
        return str(text) if text is not None else f"[binary resource {inner.uri} not shown]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    mime = getattr(block, "mime_type", None) or getattr(block, "mimeType", None) or ""
    return f"[{kind or 'unknown'} content {mime} not shown]".replace("  ", " ")


def result_text(content: list[Any], structured: Any, max_chars: int) -> str:
    """A call result as text, cut to ``max_chars`` with a note of how much was left out."""
    text = "\n".join(_block_text(b) for b in content)
    if not text and structured is not None:
        text = json.dumps(structured, default=str)
    text = text or "(no output)"
    if len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return text[:max_chars] + f"\n... ({cut} more characters cut; ask for less)"
