"""Names a module registers under a string: ``FILTERS = {"wordwrap": do_wordwrap}``.

Templates, routers, plugin hosts and sandboxes reach a function by a string key: jinja2's
``wordwrap`` filter is ``do_wordwrap``, werkzeug's ``path`` converter is ``PathConverter``, a
sandbox's ``range`` global is ``safe_range``. A question names the key ("the wordwrap filter",
"calls range(10)"), the code the function: these entries are the link. Two forms are read:

- a dict literal bound to a name at module or class level, ``NAME = {"key": value, ...}``;
- an assignment to a subscript with a string key anywhere, ``self.globals["key"] = value``,
  when ``value`` is not one of the enclosing function's parameters or local names.

Only values written as a name or a dotted name count (``do_wordwrap``, ``filters.do_round``);
whether one resolves to a definition is the index's business at lookup time.
"""

from __future__ import annotations

import ast

__all__ = ["registry_entries"]

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def registry_entries(tree: ast.Module) -> list[list[object]]:
    """``[container, key, value, line]`` for each string key bound to a name in the module."""
    out: list[list[object]] = []
    _scope(tree.body, out, local=frozenset(), in_function=False)
    return out


def _scope(
    stmts: list[ast.stmt], out: list[list[object]], local: frozenset[str], in_function: bool
) -> None:
    for stmt in stmts:
        if isinstance(stmt, _FUNCS):
            _scope(stmt.body, out, _locals(stmt), in_function=True)
        elif isinstance(stmt, ast.ClassDef):
            _scope(stmt.body, out, local, in_function)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            _assignment(stmt, out, local, in_function)
        for block in _blocks(stmt):
            _scope(block, out, local, in_function)


def _assignment(
    stmt: ast.Assign | ast.AnnAssign,
    out: list[list[object]],
    local: frozenset[str],
    in_function: bool,
) -> None:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    value = stmt.value
    if value is None:
        return
    for target in targets:
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict) and not in_function:
            for key, item in zip(value.keys, value.values, strict=True):
                name = _name(item)
                if _is_key(key) and name and name.split(".")[0] not in local:
                    out.append([target.id, key.value, name, key.lineno])  # type: ignore[union-attr]
        elif isinstance(target, ast.Subscript) and _is_key(target.slice):
            name = _name(value)
            if name and name.split(".")[0] not in local:
                container = ast.unparse(target.value)
                out.append([container, target.slice.value, name, stmt.lineno])  # type: ignore[attr-defined]


def _is_key(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(node.value)


def _name(node: ast.expr) -> str | None:
    """``do_round`` or ``filters.do_round`` as written; None for any other expression."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (head := _name(node.value)) is not None:
        return f"{head}.{node.attr}" if not head.startswith(("self", "cls")) else None
    return None


def _locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """The function's parameters and the names it binds (a value among them is data)."""
    args = func.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = {a.arg for a in params if a is not None}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return frozenset(names)


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in ``if``/``try``/``with``/``for`` (not in defs or classes)."""
    if isinstance(stmt, ast.If | ast.For | ast.AsyncFor | ast.While):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, ast.Try):
        return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
    if isinstance(stmt, ast.With | ast.AsyncWith):
        return [stmt.body]
    return []
