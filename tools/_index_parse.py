"""Parse one Python file into the index's per-file entry: definitions, imports, names used."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import Any

from tierflow.tools._index_facts import (
    FIELD_FLAVORS,
    field_default,
    flavor_of,
    parameters,
    plain,
)
from tierflow.tools._index_model import Definition, Kind
from tierflow.tools._index_registry import registry_entries
from tierflow.tools._index_source import Source, first_paragraph, names_used, statements

__all__ = ["parse_file"]

_SCOPES = (ast.If, ast.Try, ast.With, ast.AsyncWith)


class _FileParser:
    """Walks one module's ``ast`` and collects its entry."""

    def __init__(self, text: str, path: str, module: str, package: str) -> None:
        self.src, self.path, self.module, self.package = Source(text), path, module, package
        self.defs: list[Definition] = []
        self.imports: list[list[Any]] = []
        self.stars: list[list[Any]] = []
        self.all_names: list[str] | None = None
        self.flavors: dict[str, str] = {}

    def _doc(self, node: ast.AST) -> dict[str, Any]:
        doc = (
            ast.get_docstring(node)
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef | ast.Module)
            else None
        )
        return {"docstring": doc, "summary": first_paragraph(doc)}

    def _new(self, qual: str, kind: Kind, node: ast.stmt, **extra: Any) -> Definition:
        return Definition(
            qualname=qual,
            name=qual.rsplit(".", 1)[-1],
            kind=kind,
            module=self.module,
            path=self.path,
            line=node.lineno,
            end_line=node.end_lineno or node.lineno,
            **extra,
        )

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str) -> Definition:
        kind = Kind.METHOD if owner else Kind.FUNCTION
        return self._new(
            f"{owner}.{node.name}" if owner else node.name,
            kind,
            node,
            signature=self.src.header(node),
            parameters=parameters(self.src, node.args),
            returns=self.src.segment(node.returns) if node.returns else None,
            decorators=tuple(self.src.segment(d) for d in node.decorator_list),
            **self._doc(node),
        )

    def assignment(self, node: ast.stmt, owner: str, flavor: str) -> list[Definition]:
        """Constants (module level), fields and class attributes (class level)."""
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value, note = [node.target], node.value, node.annotation
        elif isinstance(node, ast.Assign):
            names = [t for t in node.targets if isinstance(t, ast.Name)]
            names += [
                e
                for t in node.targets
                if isinstance(t, ast.Tuple)
                for e in t.elts
                if isinstance(e, ast.Name)
            ]
            targets, value, note = names, node.value, None
        else:
            return []
        annotation = self.src.segment(note) if note is not None else None
        out = []
        for target in targets:
            kind, default = Kind.MODULE_CONSTANT, None
            if owner:
                kind = self._member_kind(target.id, annotation, value, flavor)
                # Annotated class attributes keep a default: a base in another file may make them fields.
                default = (
                    field_default(self.src, value)
                    if annotation is not None or kind is Kind.FIELD
                    else None
                )
            out.append(
                self._new(
                    f"{owner}.{target.id}" if owner else target.id,
                    kind,
                    node,
                    signature=self.src.statement(node),
                    annotation=annotation,
                    default=default,
                    value=self.src.segment(value) if value is not None else None,
                )
            )
        return out

    def _member_kind(
        self, name: str, note: str | None, value: ast.expr | None, flavor: str
    ) -> Kind:
        if flavor == "attrs" and isinstance(value, ast.Call):
            called = plain(self.src.segment(value.func))
            if called.rsplit(".", 1)[-1] in ("ib", "attrib", "field"):
                return Kind.FIELD
        if note is None or flavor not in FIELD_FLAVORS or "ClassVar" in note:
            return Kind.CLASS_ATTRIBUTE
        if flavor == "pydantic" and name.startswith("_"):
            return Kind.CLASS_ATTRIBUTE
        return Kind.FIELD

    def klass(self, node: ast.ClassDef, owner: str) -> list[Definition]:
        qual = f"{owner}.{node.name}" if owner else node.name
        bases = [self.src.segment(b) for b in node.bases]
        bases += [
            f"{k.arg}={self.src.segment(k.value)}" if k.arg else f"**{self.src.segment(k.value)}"
            for k in node.keywords
        ]
        decorators = [self.src.segment(d) for d in node.decorator_list]
        flavor = flavor_of([b for b in bases if "=" not in b], decorators, self.flavors)
        self.flavors[qual] = flavor
        inner = self.body(node.body, qual, flavor)
        inner += self._instance_attributes(node, qual, {d.qualname for d in inner})
        mine = [d.qualname for d in inner if d.qualname.count(".") == qual.count(".") + 1]
        head = self._new(
            qual,
            Kind.CLASS,
            node,
            signature=self.src.header(node),
            bases=tuple(bases),
            decorators=tuple(decorators),
            flavor=flavor,
            members=tuple(mine),
            **self._doc(node),
        )
        return [head, *inner]

    def _instance_attributes(
        self, node: ast.ClassDef, qual: str, seen: set[str]
    ) -> list[Definition]:
        """``self.x = ...`` in the class's methods (``__init__`` first)."""
        methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
        methods.sort(key=lambda m: m.name != "__init__")
        out: list[Definition] = []
        for method in methods:
            args = [*method.args.posonlyargs, *method.args.args]
            if not args or any(
                plain(self.src.segment(d)) == "staticmethod" for d in method.decorator_list
            ):
                continue
            me = args[0].arg
            for stmt in statements(method.body):
                out += self._self_assignment(stmt, me, qual, seen)
        return out

    def _self_assignment(
        self, stmt: ast.AST, me: str, qual: str, seen: set[str]
    ) -> list[Definition]:
        if isinstance(stmt, ast.Assign):
            targets, note = stmt.targets, None
        elif isinstance(stmt, ast.AnnAssign):
            targets, note = [stmt.target], stmt.annotation
        else:
            return []
        out = []
        for target in targets:
            if not (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == me
            ):
                continue
            name = f"{qual}.{target.attr}"
            if name in seen:
                continue
            seen.add(name)
            value = stmt.value
            out.append(
                self._new(
                    name,
                    Kind.ATTRIBUTE,
                    stmt,
                    signature=self.src.statement(stmt),  # type: ignore[arg-type]
                    annotation=self.src.segment(note) if note else None,
                    value=self.src.segment(value) if value is not None else None,
                )
            )
        return out

    def body(self, stmts: list[ast.stmt], owner: str, flavor: str = "") -> list[Definition]:
        out: list[Definition] = []
        for stmt in stmts:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append(self.function(stmt, owner))
            elif isinstance(stmt, ast.ClassDef):
                out += self.klass(stmt, owner)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                out += self.assignment(stmt, owner, flavor)
                if not owner:
                    self._maybe_all(stmt)
            elif isinstance(stmt, ast.Expr) and out and _is_string(stmt.value):
                out[-1] = _with_attribute_doc(out[-1], stmt.value.value)  # type: ignore[attr-defined]
            elif isinstance(stmt, ast.AugAssign | ast.Expr) and not owner:
                self._maybe_all(stmt)
            elif isinstance(stmt, ast.Import | ast.ImportFrom) and not owner:
                self._import(stmt)
            elif isinstance(stmt, _SCOPES):
                for block in _blocks(stmt):
                    out += self.body(block, owner, flavor)
        return out

    def _maybe_all(self, stmt: ast.stmt) -> None:
        """``__all__ = [...]``, ``__all__ += [...]`` and ``__all__.extend([...])``."""
        names: list[str] | None = None
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names = _strings(stmt.value)
                if isinstance(stmt, ast.Assign | ast.AnnAssign):
                    self.all_names = []
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "__all__"
                and stmt.value.args
            ):
                names = _strings(stmt.value.args[0])
        if names is not None:
            self.all_names = [*(self.all_names or []), *names]

    def _import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                local = alias.asname or alias.name.split(".", 1)[0]
                target = alias.name if alias.asname else local
                self.imports.append([local, target, None, stmt.lineno])
            return
        base = self._absolute(stmt.module, stmt.level)
        for alias in stmt.names:
            if alias.name == "*":
                self.stars.append([base, stmt.lineno])
            else:
                self.imports.append([alias.asname or alias.name, base, alias.name, stmt.lineno])

    def _absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts):
            return f"{'.' * level}{module or ''}"  # leaves the tree: never resolves
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, *([module] if module else [])])


def _is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _with_attribute_doc(definition: Definition, doc: str) -> Definition:
    """A string right after a field or constant documents it (Sphinx and pydantic read these)."""
    if definition.kind in (Kind.CLASS, Kind.FUNCTION, Kind.METHOD) or definition.docstring:
        return definition
    text = "\n".join(line.strip() for line in doc.strip().splitlines())
    return replace(definition, docstring=text, summary=first_paragraph(text))


def _strings(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return []


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(stmt, ast.Try):
        return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    return [stmt.body]  # type: ignore[attr-defined]


def parse_file(text: str, path: str, module: str, package: str) -> dict[str, Any]:
    """Parse one module's source into the JSON-ready entry the index caches.

    Args:
        text: the file's source.
        path: its path relative to the root, e.g. ``graph/state.py``.
        module: its import name, e.g. ``graph.state``.
        package: the dotted package its relative imports start from (path-based).

    Returns:
        ``{"module", "defs", "imports", "stars", "all", "uses", "imported", "registry"}``;
        imports are ``[local name, absolute module, imported name or None, line]``, registry
        entries ``[container, key, value name, line]`` (:mod:`._index_registry`).

    Raises:
        SyntaxError: the file is not valid Python (``ValueError`` for NUL bytes).
    """
    tree = ast.parse(text, filename=path)
    parser = _FileParser(text, path, module, package)
    defs = parser.body(tree.body, "")
    top = tuple(d.qualname for d in defs if "." not in d.qualname)
    lines = text.count("\n") + (not text.endswith("\n"))
    head = Definition(
        qualname=module,
        name=module.rsplit(".", 1)[-1],
        kind=Kind.MODULE,
        module=module,
        path=path,
        line=1,
        end_line=max(lines, 1),
        members=top,
        **parser._doc(tree),
    )
    uses, imported = names_used(tree)
    return {
        "module": module,
        "defs": [d.to_json() for d in [head, *defs]],
        "imports": parser.imports,
        "stars": parser.stars,
        "all": parser.all_names,
        "uses": uses,
        "imported": imported,
        "registry": registry_entries(tree),
    }
