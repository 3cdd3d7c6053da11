"""Fitness tests of the layout: imports flow one way, modules and functions stay small.

``tools`` and ``tierflow`` are leaves, ``nodes`` (the node kinds) use them, ``graphs`` (one
package per workflow, its domain logic beside its wiring) use ``nodes``, and ``evals`` and
``bench`` use ``graphs``. The CLI in ``tierflow/`` finds graphs through ``langgraph.json``, never
by importing them. Each check lists every offender as ``file:line what``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Source folder -> the installed package it becomes (pyproject's package-dir).
PACKAGES = {
    "tierflow": "tierflow",
    "nodes": "tierflow.nodes",
    "graphs": "tierflow.graphs",
    "tools": "tierflow.tools",
    "evals": "tierflow.evals",
}
# What each folder may not import (a package or any module under it).
FORBIDDEN = {
    "tierflow": ("tierflow.graphs", "tierflow.evals", "tierflow.nodes"),
    "tools": ("tierflow.graphs", "tierflow.evals", "tierflow.nodes"),
    "nodes": ("tierflow.graphs", "tierflow.evals"),
    "graphs": ("tierflow.evals",),
}
# The package's public face re-exports the node kinds a graph author needs (lazily, on first
# use); no other engine module depends on a node kind.
NODES_ALLOWED_IN = {"tierflow/__init__.py"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (top level and inside functions), absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _offenders(folder: str) -> list[str]:
    bad = []
    for path in _sources(folder):
        rel = str(path.relative_to(REPO))
        banned = FORBIDDEN[folder]
        if rel in NODES_ALLOWED_IN:
            banned = tuple(b for b in banned if b != "tierflow.nodes")
        for line, module in _imports(path):
            if any(module == b or module.startswith(b + ".") for b in banned):
                bad.append(f"{rel}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_flow_one_way(folder: str) -> None:
    assert _offenders(folder) == [], f"{folder}/ imports what it must not (see STYLE.md)"


def test_workflows_do_not_import_each_other() -> None:
    bad = []
    for path in _sources("graphs"):
        rel = path.relative_to(REPO)
        if len(rel.parts) < 3:
            continue  # graphs/__init__.py
        own = f"tierflow.graphs.{rel.parts[1]}"
        for line, module in _imports(path):
            other = module.startswith("tierflow.graphs.") and not (
                module == own or module.startswith(own + ".")
            )
            if other:
                bad.append(f"{rel}:{line} imports {module}")
    assert bad == [], "a workflow's domain code belongs to its own package"


def test_the_import_check_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    source = "def f():\n    from tierflow.graphs.triage import build\nfrom . import claims\n"
    path = REPO / "graphs" / "codebase_qa" / "_probe_.py"
    tree_imports = [
        m for _, m in _imports_of_source(source, path) if m.startswith("tierflow.graphs")
    ]
    assert "tierflow.graphs.triage" in tree_imports
    assert "tierflow.graphs.codebase_qa.claims" in tree_imports


def _imports_of_source(source: str, path: Path) -> list[tuple[int, str]]:
    # _imports reads a file; the probe is written next to nothing and removed at once.
    path.write_text(source)
    try:
        return _imports(path)
    finally:
        path.unlink()


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n.end_lineno or n.lineno) - n.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_modules_of_one_concern_stay_under_400_lines() -> None:
    big = [
        f"{p.relative_to(REPO)} ({n} lines)"
        for p in _sources(*PACKAGES)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert big == [], "split these into modules of one concern"


def test_functions_stay_under_80_lines() -> None:
    long = [f for p in _sources(*PACKAGES) for f in _long_functions(p)]
    assert long == [], "split these functions"
