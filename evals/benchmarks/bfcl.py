"""BFCL v4 single-turn function calling: load with OpenAI tools, parse calls, AST-check them.

``score`` ports BFCL's Python AST checker (``bfcl_eval/eval_checker/ast_eval/ast_checker.py``);
``check_schema`` is a cheaper verifier that sees only the offered functions, never the answers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tierflow.errors import InputError
from tierflow.evals.benchmarks import _bfcl_ast
from tierflow.evals.benchmarks._data import BFCL_EVAL, package_file, read_jsonl, round_robin, window

__all__ = ["CATEGORIES", "MIX", "load", "to_tool", "parse", "score", "check_schema"]

CATEGORIES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
}
"""Our category names -> BFCL's file names (``BFCL_v4_<name>.json``)."""

MIX = ("simple", "multiple", "parallel", "irrelevance")
"""Categories of the ``mix`` split, taken round-robin in this order."""

# BFCL type names -> JSON Schema (their GORILLA_TO_OPENAPI); anything else becomes "string" as there.
_JSON = {"integer": "integer", "number": "number", "float": "number", "string": "string"}
_JSON |= {"boolean": "boolean", "bool": "boolean", "array": "array", "list": "array"}
_JSON |= {"dict": "object", "object": "object", "tuple": "array", "any": "string"}
# JSON Schema types -> the Python values check_schema accepts (bool is no number there).
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
}
_ACCEPTS |= {"boolean": (bool,), "array": (list, tuple), "object": (dict,)}


def load(split: str = "mix", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Load BFCL items of one category, or a deterministic mix of categories.

    Splits: a key of :data:`CATEGORIES`; ``"mix"`` (one item of each :data:`MIX` category per
    round, in file order); ``"calib"`` / ``"report"`` (the same mix built from each category's
    even / odd positions, so both hold every category).

    Returns:
        Dicts with ``id`` (``"bfcl-simple_python_0"``), ``category``, ``prompt`` and
        ``question`` (the user text), ``functions`` (BFCL docs), ``tools`` (OpenAI tool dicts),
        ``tool_names`` (OpenAI-safe name -> BFCL name) and ``possible_answer`` (BFCL ground
        truth: ``[{function: {param: [allowed values]}}]``; ``[]`` for irrelevance).

    Example:
        >>> [item["category"] for item in load("mix", limit=5)]
        ['simple', 'multiple', 'parallel', 'irrelevance', 'simple']
    """
    if split in CATEGORIES:
        items = _category(split)
    elif split in ("mix", "calib", "report"):
        start, step = {"mix": (0, 1), "calib": (0, 2), "report": (1, 2)}[split]
        items = round_robin([_category(name)[start::step] for name in MIX])
    else:
        raise InputError(
            f"unknown BFCL split {split!r}; use mix, calib, report or {list(CATEGORIES)}"
        )
    return window(items, limit, offset)


def _category(name: str) -> list[dict[str, Any]]:
    entries = read_jsonl(package_file(BFCL_EVAL, f"bfcl_eval/data/BFCL_v4_{CATEGORIES[name]}.json"))
    answers: list[list[dict[str, Any]]] = [[] for _ in entries]
    if name != "irrelevance":
        path = f"bfcl_eval/data/possible_answer/BFCL_v4_{CATEGORIES[name]}.json"
        truth = {
            row["id"]: row["ground_truth"] for row in read_jsonl(package_file(BFCL_EVAL, path))
        }
        answers = [truth[entry["id"]] for entry in entries]
    return [_item(name, entry, answer) for entry, answer in zip(entries, answers, strict=True)]


def _item(category: str, entry: dict[str, Any], answer: list[dict[str, Any]]) -> dict[str, Any]:
    question = "\n\n".join(
        m["content"] for turn in entry["question"] for m in turn if m["role"] == "user"
    )
    tools = [to_tool(function) for function in entry["function"]]
    return {
        "id": f"bfcl-{entry['id']}",
        "category": category,
        "prompt": question,
        "question": question,
        "functions": entry["function"],
        "tools": tools,
        "tool_names": {
            t["function"]["name"]: f["name"] for t, f in zip(tools, entry["function"], strict=True)
        },
        "possible_answer": answer,
    }


def to_tool(function: dict[str, Any]) -> dict[str, Any]:
    """Convert a BFCL function doc to an OpenAI tool (JSON Schema types, name without dots).

    Example:
        >>> tool = to_tool({"name": "math.hypot", "description": "d", "parameters": {
        ...     "type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]}})
        >>> tool["function"]["name"], tool["function"]["parameters"]["properties"]
        ('math_hypot', {'x': {'type': 'number'}})
    """
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", function["name"])[:64]
    parameters = {**_schema(function["parameters"]), "type": "object"}
    spec = {"name": name, "description": function.get("description", ""), "parameters": parameters}
    return {"type": "function", "function": spec}


def _schema(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k not in ("optional", "properties", "items")}
    if "type" in spec:
        out["type"] = _JSON.get(spec["type"], "string")
    if not isinstance(spec.get("required", []), list):
        del out["required"]
    if "properties" in spec:
        out["properties"] = {k: _schema(v) for k, v in spec["properties"].items()}
    if "items" in spec:
        out["items"] = _schema(spec["items"])
    return out


def parse(text: str) -> list[dict[str, Any]]:
    """Extract calls from ``[f(a=1), g(b="x")]`` (BFCL's format) or JSON ``{"name", "arguments"}``.

    Returns:
        ``[{"name": ..., "arguments": {...}}]``; ``[]`` when the text holds no calls (prose).

    Example:
        >>> parse('[geo.distance(a="Paris", b=[1, 2]), now()]')
        [{'name': 'geo.distance', 'arguments': {'a': 'Paris', 'b': [1, 2]}}, {'name': 'now', 'arguments': {}}]
        >>> parse('{"name": "now", "arguments": "{}"}')
        [{'name': 'now', 'arguments': {}}]
    """
    return _bfcl_ast.parse_calls(text)


def score(item: dict[str, Any], calls: list[dict[str, Any]]) -> float:
    """Return 1.0 when the calls pass BFCL's AST check for the item's category.

    ``calls`` are ``{"name", "arguments"}`` dicts (arguments may be a JSON string); a name may
    be the OpenAI-safe alias from ``item["tools"]``.

    Example:
        >>> item = load("simple", limit=1)[0]
        >>> call = {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}
        >>> score(item, [call]), score(item, [])
        (1.0, 0.0)
    """
    try:
        normalized = _normalize(item, calls)
    except ValueError:
        return 0.0
    error = _bfcl_ast.check(
        item["category"], item["functions"], normalized, item["possible_answer"]
    )
    return 1.0 if error is None else 0.0


def _normalize(item: dict[str, Any], calls: list[dict[str, Any]]) -> list[_bfcl_ast.Call]:
    """Map aliases back to BFCL names; decode JSON arguments (a ValueError unless an object)."""
    out = []
    for call in calls:
        name = item["tool_names"].get(call["name"], call["name"])
        arguments = call.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments)  # json.JSONDecodeError is a ValueError
        if not isinstance(arguments, dict):
            raise InputError(f"{name}: arguments are not a JSON object: {arguments!r}")
        out.append((name, dict(arguments)))
    return out


def check_schema(item: dict[str, Any], calls: list[dict[str, Any]]) -> str | None:
    """Check calls against the offered functions only (never the answers): a cheap verifier.

    Each call must name an offered function, give every required parameter, no unknown one,
    and values of the declared JSON types (nested arrays and objects too) and enums.

    Returns:
        ``None`` when every call fits, else a one-line reason.

    Example:
        >>> item = load("simple", limit=1)[0]
        >>> check_schema(item, [{"name": "calculate_triangle_area", "arguments": {"base": 10}}])
        "calculate_triangle_area: missing required parameter 'height'"
    """
    tools = {tool["function"]["name"]: tool["function"] for tool in item["tools"]}
    aliases = {original: alias for alias, original in item["tool_names"].items()}
    try:
        normalized = _normalize(item, calls)
    except ValueError as bad:
        return f"unreadable arguments: {bad}"
    for name, arguments in normalized:
        tool = tools.get(aliases.get(name, ""))
        if tool is None:
            return (
                f"{name}: not an offered function; offered: {sorted(item['tool_names'].values())}"
            )
        error = _object_error(name, arguments, tool["parameters"], top=True)
        if error:
            return error
    return None


def _object_error(
    path: str, value: dict[str, Any], schema: dict[str, Any], top: bool
) -> str | None:
    properties = schema.get("properties", {})
    for param in schema.get("required", []):
        if param not in value:
            return f"{path}: missing required parameter {param!r}"
    for key, item in value.items():
        if key not in properties:
            if top:
                return f"{path}: unknown parameter {key!r}"
            continue  # nested objects may carry keys their schema does not list
        error = _value_error(
            f"{path}.{key}" if not top else f"{path}: {key!r}", item, properties[key]
        )
        if error:
            return error
    return None


def _value_error(path: str, value: Any, schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if kind in _ACCEPTS and (
        not isinstance(value, _ACCEPTS[kind]) or (isinstance(value, bool) and kind != "boolean")
    ):
        return f"{path} should be {kind}, got {type(value).__name__} {value!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} = {value!r} is not one of {schema['enum']}"
    if kind == "array" and "items" in schema:
        for n, element in enumerate(value):
            error = _value_error(f"{path}[{n}]", element, schema["items"])
            if error:
                return error
    if kind == "object" and "properties" in schema:
        return _object_error(path, value, schema, top=False)
    return None
