"""BFCL's Python AST side: parse call text, and its checker ported from bfcl-eval 2026.3.23.

The checker (``eval_checker/ast_eval/ast_checker.py``) keeps its semantics and quirks: greedy
matching of parallel calls, one level of nested type checks, strict element types inside
arrays. Each check returns an error message or ``None``.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from typing import Any

__all__ = ["Call", "parse_calls", "check", "standardize"]

Call = tuple[str, dict[str, Any]]
"""One model call: (BFCL function name, arguments)."""

# PYTHON_TYPE_MAPPING and PYTHON_NESTED_TYPE_CHECK_LIST.
_PY: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool}
_PY |= {"array": list, "tuple": list, "dict": dict, "any": str}
_NESTED = ("array", "tuple")
_PUNCT = re.compile(r"[ \,\.\/\-\_\*\^]")
_OPS: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_OPS |= {ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.S)


def parse_calls(text: str) -> list[dict[str, Any]]:
    """Parse ``[f(a=1), g(b="x")]`` or JSON calls (see ``bfcl.parse``); ``[]`` when none."""
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip().strip("'")
    spans = [body]
    for start, end in (body.find("["), body.rfind("]")), (body.find("{"), body.rfind("}")):
        if 0 <= start < end:
            spans.append(body[start : end + 1])  # calls wrapped in prose
    for span in spans:
        calls = _python_calls(span)
        calls = _json_calls(span) if calls is None else calls
        if calls is not None:
            return calls
    return []


def _python_calls(text: str) -> list[dict[str, Any]] | None:
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    if not all(isinstance(node, ast.Call) for node in nodes):
        return None
    return [
        {"name": _dotted(n.func), "arguments": _kwargs(n)} for n in nodes if isinstance(n, ast.Call)
    ]


def _dotted(node: ast.expr) -> str:
    return ast.unparse(node)  # "geo.distance" for an attribute chain, as BFCL joins it


def _kwargs(call: ast.Call) -> dict[str, Any]:
    return {kw.arg: _value(kw.value) for kw in call.keywords if kw.arg is not None}


def _value(node: ast.expr) -> Any:
    """Turn an argument into data as BFCL's resolver does, but without ``eval``."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _value(k): _value(v)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (left, right))
        if numbers and not (isinstance(node.op, ast.Pow) and abs(right) > 64):
            try:
                return _OPS[type(node.op)](left, right)
            except ArithmeticError:
                pass
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and node.keywords:
        return {_dotted(node.func): _kwargs(node)}
    return ast.unparse(node)


def _json_calls(text: str) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    calls = []
    for call in data if isinstance(data, list) else [data]:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            call = call["function"]  # OpenAI's {"type": "function", "function": {...}}
        if not isinstance(call, dict):
            return None
        name = call.get("name") or call.get("function")
        arguments = call.get("arguments", call.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                return None
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return None
        calls.append({"name": name, "arguments": arguments})
    return calls


def standardize(text: str) -> str:
    """BFCL's string normalization: drop spaces and ``,./-_*^``, lower-case, ``'`` -> ``"``.

    Example:
        >>> standardize("April 1, 2024") == standardize("april 1 2024")
        True
    """
    return _PUNCT.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize(value) if type(value) is str else value


def check(category: str, functions: list[dict[str, Any]], calls: list[Call], answer: list[dict[str, Any]]) -> str | None:  # fmt: skip
    """Check calls against BFCL ground truth for a category; return the first error or ``None``."""
    if category == "irrelevance":
        return None if not calls else f"expected no call, got {len(calls)}"
    if len(calls) != len(answer):
        return f"wrong number of calls: expected {len(answer)}, got {len(calls)}"
    if "parallel" in category:
        return _parallel(functions, calls, answer)
    if "multiple" in category:
        return _call(_find(functions, next(iter(answer[0]))), calls[0], answer[0])
    return _call(functions[0], calls[0], answer[0])


def _find(functions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(f for f in functions if f["name"] == name)


def _parallel(functions: list[dict[str, Any]], calls: list[Call], answer: list[dict[str, Any]]) -> str | None:  # fmt: skip
    matched: set[int] = set()
    for expected in answer:
        name = next(iter(expected))
        function = _find(functions, name)
        hit = next(
            (i for i, call in enumerate(calls)
             if i not in matched and _call(function, call, expected) is None),
            None,
        )  # fmt: skip
        if hit is None:
            return f"no call matches the expected call of {name!r}"
        matched.add(hit)
    return None


def _call(function: dict[str, Any], call: Call, expected: dict[str, Any]) -> str | None:
    """simple_function_checker: name, required, unexpected, each value, omitted non-optionals."""
    options: dict[str, list[Any]] = next(iter(expected.values()))
    name, arguments = call
    if name != function["name"]:
        return f"expected function {function['name']!r}, got {name!r}"
    details = function["parameters"]["properties"]
    for param in function["parameters"]["required"]:
        if param not in arguments:
            return f"missing required parameter {param!r}"
    for param, value in arguments.items():
        if param not in details or param not in options:
            return f"unexpected parameter {param!r}"
        error = _param(param, value, details[param], options[param])
        if error:
            return error
    for param, values in options.items():
        if param not in arguments and "" not in values:
            return f"parameter {param!r} omitted but not optional"
    return None


def _param(param: str, value: Any, spec: dict[str, Any], values: list[Any]) -> str | None:
    kind = spec["type"]
    expected = _PY.get(kind, str)
    item_kind = spec.get("items", {}).get("type")
    nested = _PY.get(item_kind, str) if kind in _NESTED and item_kind else None
    if kind == "tuple" and type(value) is tuple:
        value = list(value)
    if kind == "float" and type(value) is int:
        value = float(value)  # Python's own int -> float promotion
    valid, is_variable = _type(value, values, expected, nested)
    if not valid:
        return f"wrong type for {param!r}: expected {kind}, got {type(value).__name__}"
    if not is_variable:
        if expected is dict:
            return _dict(param, value, values)
        if expected is list and nested is dict:
            return _list_of_dicts(param, value, values)
        if expected is str:
            ok = standardize(value) in [standardize(v) for v in values if type(v) is str]
            return None if ok else f"invalid value for {param!r}: {value!r}"
        if expected is list:
            allowed = [[_std(x) for x in v] if type(v) is list else [] for v in values]
            ok = [_std(x) for x in value] in allowed
            return None if ok else f"invalid value for {param!r}: {value!r}"
    return None if value in values else f"invalid value for {param!r}: {value!r}"


def _type(value: Any, values: list[Any], expected: type, nested: type | None) -> tuple[bool, bool]:
    """type_checker: (valid, is_variable); a value typed like the answers counts as a variable."""
    answer_type = next((type(v) for v in values if v != ""), None)
    is_variable = answer_type is not None and answer_type is not expected
    elements: Any = value  # a list when nested is set; keeps mypy from narrowing it to `type`
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for option in values:
            if type(option) is not list or all(_type(x, option, nested, None)[0] for x in elements):
                return True, is_variable
        return False, False
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, False


def _dict(param: str, value: dict[str, Any], options: list[Any]) -> str | None:
    """dict_checker: every given key allowed with an allowed value; no non-optional key missing."""
    error = f"invalid dict for {param!r}: {value!r}"
    for option in options:
        if option == "" or not isinstance(option, dict):
            continue
        bad = [k for k, v in value.items() if k not in option or _std(v) not in [_std(x) for x in option[k]]]  # fmt: skip
        missing = [k for k, allowed in option.items() if k not in value and "" not in allowed]
        if not bad and not missing:
            return None
    return error


def _list_of_dicts(param: str, value: list[Any], options: list[Any]) -> str | None:
    """list_dict_checker: same length as an option, each dict valid against its counterpart."""
    for option in options:
        option = option if type(option) is list else []  # BFCL: len("") == 0
        if len(value) == len(option) and all(
            type(v) is dict and _dict(param, v, [o]) is None
            for v, o in zip(value, option, strict=True)
        ):
            return None
    return f"invalid list of dicts for {param!r}: {value!r}"
