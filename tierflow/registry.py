"""Find graphs by name through langgraph.json, the same registry `langgraph dev` reads."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from tierflow.errors import GraphNotFoundError, TierflowError

__all__ = ["find_registry", "graph_names", "load_builder"]


def find_registry(start: Path | None = None) -> Path:
    """The nearest langgraph.json from ``start`` upward, else the one beside the installed source."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "langgraph.json").is_file():
            return folder / "langgraph.json"
    beside = Path(__file__).resolve().parents[1] / "langgraph.json"
    if beside.is_file():
        return beside
    raise TierflowError("no langgraph.json found; run tierflow from the project folder")


def _entries(registry: Path) -> dict[str, str]:
    return dict(json.loads(registry.read_text()).get("graphs", {}))


def graph_names(registry: Path | None = None) -> list[str]:
    """Names of the registered graphs."""
    return sorted(_entries(registry or find_registry()))


def load_builder(name: str, registry: Path | None = None) -> Any:
    """The uncompiled StateGraph of graph ``name`` (compile it with your checkpointer)."""
    registry = registry or find_registry()
    entries = _entries(registry)
    if name not in entries:
        raise GraphNotFoundError(name, sorted(entries))
    file_part, _, attr = entries[name].partition(":")
    path = (registry.parent / file_part).resolve()
    if not path.is_file():
        raise TierflowError(f"langgraph.json maps graph '{name}' to {path}, which does not exist")
    compiled = getattr(_import_file(path), attr or "graph")
    return compiled.builder


def _import_file(path: Path) -> Any:
    """The module of ``path``: tierflow's own graphs by their package name, others by file."""
    import tierflow.graphs as own

    own_dir = Path(own.__file__).resolve().parent
    if path.is_relative_to(own_dir):
        parts = path.relative_to(own_dir).with_suffix("").parts
        return importlib.import_module(".".join(("tierflow.graphs", *parts)))
    module_name = f"_tierflow_user_graph_{path.parent.name}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TierflowError(f"cannot import a graph from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
