"""Find graphs by name through langgraph.json, the same registry `langgraph dev` reads."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierflow.errors import GraphNotFoundError, SpecError, TierflowError

if TYPE_CHECKING:
    from tierflow.graphspec import GraphSpec

__all__ = [
    "find_registry",
    "graph_names",
    "load_builder",
    "load_spec",
    "graph_specs",
    "registry_problems",
]


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
    module, attr = _module_of(name, registry or find_registry())
    return getattr(module, attr).builder


def load_spec(name: str, registry: Path | None = None) -> GraphSpec | None:
    """The :class:`~tierflow.graphspec.GraphSpec` graph ``name``'s module declares, if any.

    A module declares ``SPEC`` (one graph) or ``SPECS`` (name -> spec); a module that declares
    none (a user's graph from before specs) gets None, and callers fall back to the implicit
    rules. A module that declares specs but none named ``name`` is an error.
    """
    registry = registry or find_registry()
    module, _ = _module_of(name, registry)
    declared = _declared_specs(module)
    if not declared:
        return None
    if name not in declared:
        raise SpecError(
            f"langgraph.json names graph '{name}', but {module.__file__} declares GraphSpecs "
            f"{sorted(declared)}: name one '{name}', or fix the entry in {registry}"
        )
    return declared[name]


def graph_specs(registry: Path | None = None) -> dict[str, GraphSpec]:
    """Every registered graph that declares a spec, in langgraph.json's order (imports them all)."""
    registry = registry or find_registry()
    found = {name: load_spec(name, registry) for name in _entries(registry)}
    return {name: spec for name, spec in found.items() if spec is not None}


def registry_problems(registry: Path | None = None) -> list[str]:
    """What langgraph.json lacks or gets wrong against the specs; each says what to write.

    Looks at every registered module and at ``graphs/*/graph.py`` beside langgraph.json: a
    spec there that langgraph.json does not list is reported with the line to add.
    """
    registry = registry or find_registry()
    entries = _entries(registry)
    problems = []
    files = {(registry.parent / v.partition(":")[0]).resolve() for v in entries.values()}
    files |= {p.resolve() for p in registry.parent.glob("graphs/*/graph.py")}
    for name in entries:
        try:
            load_spec(name, registry)
        except TierflowError as exc:
            problems.append(str(exc))
    for path in sorted(p for p in files if p.is_file()):
        module = _import_file(path)
        for name in sorted(set(_declared_specs(module)) - set(entries)):
            problems.append(_missing_entry(name, module, path, registry))
    return problems


def _missing_entry(name: str, module: Any, path: Path, registry: Path) -> str:
    exposed = [
        attr
        for attr, value in vars(module).items()
        if hasattr(value, "builder") and getattr(value, "name", None) == name
    ]
    where = f"./{path.relative_to(registry.parent.resolve())}"
    if not exposed:
        return (
            f"{where} declares GraphSpec '{name}' but exposes no compiled graph named so: add "
            f'`graph = SPEC.compile()`, then "{name}": "{where}:graph" to {registry}\'s graphs'
        )
    return f'add "{name}": "{where}:{exposed[0]}" to the graphs of {registry}'


def _module_of(name: str, registry: Path) -> tuple[Any, str]:
    """Graph ``name``'s module and the attribute holding its compiled graph."""
    entries = _entries(registry)
    if name not in entries:
        raise GraphNotFoundError(name, sorted(entries))
    file_part, _, attr = entries[name].partition(":")
    path = (registry.parent / file_part).resolve()
    if not path.is_file():
        raise TierflowError(f"langgraph.json maps graph '{name}' to {path}, which does not exist")
    return _import_file(path), attr or "graph"


def _declared_specs(module: Any) -> dict[str, GraphSpec]:
    """A module's ``SPEC`` and ``SPECS`` (a mapping or a sequence of specs), by name."""
    specs = getattr(module, "SPECS", ())
    listed = list(specs.values() if isinstance(specs, Mapping) else specs)
    if getattr(module, "SPEC", None) is not None:
        listed.insert(0, module.SPEC)
    return {spec.name: spec for spec in listed}


def _import_file(path: Path) -> Any:
    """The module of ``path``: tierflow's own graphs by their package name, others by file."""
    # Found by name, not imported here: tierflow/ never imports graphs/ (the registry is the link).
    own = importlib.util.find_spec("tierflow.graphs")
    own_dir = Path(own.origin or "").resolve().parent if own else None
    if own_dir is not None and path.is_relative_to(own_dir):
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
