"""A code index of a Python tree: definitions, signatures, bases, docstrings, members, references.

Why the standard library's ``ast`` and not a kept library:

- ``jedi`` infers types across calls, which a lookup of what is *written* does not need; it parses
  lazily per query and is slow and memory-heavy on a 2-core machine over a whole tree.
- ``tree-sitter`` packages parse many languages but give syntax only: no Python semantics
  (fields, re-exports, ``__all__``) beyond what ``ast`` already gives, and add a binary wheel.
- ``universal-ctags`` (Debian's ``ctags``) lists names and lines only: no defaults, annotations,
  bases as written or docstrings, which are what questions about code ask for.

(On this machine jedi is installed in the venv, no tree-sitter package is, and universal-ctags
5.9 is ``/usr/bin/ctags``.) ``ast`` gives all of that with exact spans and no dependency. Files other than ``.py`` are not
indexed: for them (and for any text) the search subagent keeps ``grep`` from
:mod:`tierflow.tools.fs`. The index is built once per tree and cached on disk, each file keyed by
its sha256, so a rebuild parses only what changed (see :mod:`tierflow.tools._index_build`).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool

from tierflow.tools._index_build import BuildStats, build_entries, default_index_dir
from tierflow.tools._index_link import Tables
from tierflow.tools._index_model import (
    Definition,
    Kind,
    Parameter,
    ReExport,
    Reference,
    Registration,
    Skipped,
    UnknownName,
)
from tierflow.tools._index_tools import make_tools
from tierflow.tools._sandbox import Sandbox, ToolSetupError

__all__ = [
    "BuildStats",
    "CodeIndex",
    "Definition",
    "Kind",
    "Parameter",
    "ReExport",
    "Reference",
    "Registration",
    "Skipped",
    "UnknownName",
    "default_index_dir",
    "index_tools",
]

_LINE_CACHE_FILES = 256
_REGISTRABLE = (Kind.FUNCTION, Kind.METHOD, Kind.CLASS)


def _normalise(name: str) -> str:
    """``"`Session.request()`"`` -> ``Session.request``; ``graph/state.py`` -> ``graph.state``."""
    text = name.strip().strip("`'\"").strip()
    for prefix in ("class ", "def ", "async def "):
        text = text.removeprefix(prefix)
    text = text.split("(", 1)[0].strip()
    if text.endswith(".py"):
        text = text[:-3].replace("/", ".").removesuffix(".__init__")
    return text.replace("::", ".").replace(":", ".").strip(".")


class CodeIndex:
    r"""Every definition in a Python tree, found by name and never by an import site.

    Build it with :meth:`build`; every lookup takes a name as ``Name``, ``Class.method`` or
    ``module.Name`` (re-exports in ``__init__.py`` and ``__all__`` are followed to the defining
    module) and raises :class:`UnknownName`, with close names, when nothing matches.

    Attributes:
        root: the tree's real path.
        skipped: ``.py`` files that could not be parsed, with the reason.
        stats: what the build did (files parsed, reused from the cache, removed, seconds).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "shapes.py").write_text(
        ...     "class Shape:\n"
        ...     "    '''A shape.'''\n"
        ...     "class Square(Shape):\n"
        ...     "    def area(self, side: float = 1.0) -> float:\n"
        ...     "        return side * side\n"
        ... )
        >>> index = CodeIndex.build(folder, cache_dir=folder / "cache")
        >>> index.find_definition("Square.area")[0].where
        'shapes.py:4'
        >>> index.signature("Square.area")
        'def area(self, side: float = 1.0) -> float'
        >>> index.class_bases("Square")
        ('Shape',)
        >>> index.docstring("Shape")
        'A shape.'
    """

    def __init__(self, root: Path, tables: Tables, skipped: list[Skipped], stats: BuildStats):
        self.root = root
        self.skipped = tuple(skipped)
        self.stats = stats
        self._tables = tables
        self._box = Sandbox(root)
        self._lines: dict[str, list[str]] = {}
        self._registry: dict[str, list[Registration]] | None = None

    @classmethod
    def build(cls, root: str | Path, cache_dir: str | Path | None = None) -> CodeIndex:
        """Index the ``.py`` files under ``root``, re-parsing only those changed since the cache.

        Args:
            root: the tree; hidden files and folders are never read (the file tools' sandbox).
            cache_dir: where the cache file goes; None for ``$TIERFLOW_MODEL_CACHE/index``
                (else ``~/.cache/tierflow/index``).

        Raises:
            ValueError: ``root`` is not an existing directory.
        """
        box = Sandbox(Path(root))
        entries, skipped, stats = build_entries(box.root, Path(cache_dir) if cache_dir else None)
        return cls(box.root, Tables(entries, box.root.name), skipped, stats)

    def __len__(self) -> int:
        return sum(len(found) for found in self._tables.by_qual.values())

    def __iter__(self) -> Iterator[Definition]:
        for found in self._tables.by_qual.values():
            yield from found

    # --- lookups -------------------------------------------------------------------------------

    def find_definition(self, name: str) -> list[Definition]:
        """Definitions ``name`` names, best first: exact qualname, its defining module, others.

        Raises:
            UnknownName: nothing in the tree is called that.
        """
        query = _normalise(name)
        found = self._tables.find(query) if query else []
        if not found:
            raise UnknownName(
                name, self.suggest(query), self._tables.external_imports(query.rsplit(".", 1)[-1])
            )
        return found

    def registered(self, key: str) -> list[Registration]:
        """Functions and classes registered under the string ``key`` (``"wordwrap"``), by file.

        Only values that resolve to a function, method or class of the tree count: a registry
        of builtins or of data is no definition.
        """
        if self._registry is None:
            self._registry = {}
            for rel, entry in sorted(self._tables.entries.items()):
                for container, name, value, line in entry.get("registry", ()):
                    target = self._tables.dotted(rel, value)
                    if target is not None and target.kind in _REGISTRABLE:
                        found = Registration(container, name, rel, line, target)
                        self._registry.setdefault(name, []).append(found)
        return list(self._registry.get(key, ()))

    def signature(self, name: str) -> str:
        """A function's header as written; a class's constructor; a field's or constant's line.

        A class without its own ``__init__`` shows the nearest in-tree ``__init__``; a dataclass,
        NamedTuple, pydantic model or TypedDict without one shows ``Name(field: type = default)``.
        """
        found = self.find_definition(name)[0]
        if found.kind is not Kind.CLASS:
            return found.signature
        init = self.constructor(found)
        if init is not None:
            return init.signature
        fields = [m for m in self.members(found.dotted) if m.kind is Kind.FIELD]
        if fields:
            parts = [_field_text(f) for f in fields]
            return f"{found.name}({', '.join(parts)})"
        return found.signature

    def class_bases(self, name: str) -> tuple[str, ...]:
        """The bases of the best-ranked class called ``name``, as written in its ``class`` line."""
        return self.find_class(name).bases

    def ancestors(self, name: str) -> list[Definition]:
        """The in-tree classes a class inherits from, nearest first."""
        return self._tables.ancestors(self.find_class(name))

    def constructor(self, klass: Definition) -> Definition | None:
        """A class's ``__init__``: its own, else the nearest in-tree base's."""
        return self._tables.member(klass, "__init__")

    def import_site(self, module_path: str, local: str) -> tuple[int, str] | None:
        """``(line, module)`` of the import binding ``local`` in a file, e.g. a base's origin."""
        return self._tables.import_site(module_path, local)

    def base_definition(self, klass: Definition, base: str) -> Definition | None:
        """What one of ``klass``'s bases resolves to in this tree, or None (outside the tree)."""
        return self._tables.dotted(klass.path, base)

    def docstring(self, name: str) -> str | None:
        """The full docstring of the best match (a field's or constant's string below it)."""
        return self.find_definition(name)[0].docstring

    def members(self, name: str) -> list[Definition]:
        """A class's fields, attributes and methods (inherited ones after its own); a module's names.

        A module with ``__all__`` lists those names, each followed to its definition.
        """
        found = self.find_definition(name)[0]
        if found.kind is Kind.MODULE:
            return self._module_members(found)
        own = self._own_members(found)
        names = {m.name for m in own}
        for base in self._tables.ancestors(found) if found.kind is Kind.CLASS else []:
            extra = [m for m in self._own_members(base) if m.name not in names]
            names |= {m.name for m in extra}
            own += extra
        return own

    def references(self, name: str, limit: int | None = 50) -> list[Reference]:
        """Uses of a name (its last part) as ast Names, attributes and imports, in path order."""
        target = _normalise(name).rsplit(".", 1)[-1]
        defined = {(d.path, d.line) for d in self._tables.by_name.get(target, [])}
        found: list[Reference] = []
        for rel, entry in sorted(self._tables.entries.items()):
            imports = set(entry["imported"].get(target, ()))
            for line in sorted(imports | set(entry["uses"].get(target, ()))):
                kind = (
                    "import"
                    if line in imports
                    else "definition"
                    if (rel, line) in defined
                    else "use"
                )
                found.append(Reference(rel, line, self.line_text(rel, line), kind))
                if limit is not None and len(found) >= limit:
                    return found
        return found

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Defined names close to ``name`` (case-insensitive matches first)."""
        tail = name.rsplit(".", 1)[-1]
        pool = sorted(set(self._tables.by_name) | set(self._tables.by_qual))
        same_case = [p for p in pool if p.lower() in (name.lower(), tail.lower())]
        close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
        close += difflib.get_close_matches(tail, pool, n=n, cutoff=0.6)
        return list(dict.fromkeys([*same_case, *close]))[:n]

    def line_text(self, path: str, line: int) -> str:
        """The stripped source line ``path:line`` (read through the sandbox; "" when gone)."""
        if path not in self._lines:
            if len(self._lines) >= _LINE_CACHE_FILES:
                self._lines.pop(next(iter(self._lines)))
            try:
                raw = self._box.resolve(path).read_bytes()
                self._lines[path] = importlib.util.decode_source(raw).split("\n")
            except (OSError, ValueError, SyntaxError):
                self._lines[path] = []
        lines = self._lines[path]
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""

    # --- helpers -------------------------------------------------------------------------------

    def find_class(self, name: str) -> Definition:
        """The best-ranked class called ``name`` (raises :class:`UnknownName` when none is)."""
        found = self.find_definition(name)
        classes = [d for d in found if d.kind is Kind.CLASS]
        if not classes:
            first = found[0]
            raise UnknownName(
                f"{name} (it is a {first.kind} at {first.where}, not a class)", [], []
            )
        return classes[0]

    def _own_members(self, owner: Definition) -> list[Definition]:
        table = self._tables.local.get(owner.path, {})
        return [table[m][0] for m in owner.members if m in table]

    def _module_members(self, module: Definition) -> list[Definition]:
        entry = self._tables.entries[module.path]
        names = entry["all"]
        if names is None:
            names = [m for m in module.members if not m.startswith("_")]
            if module.path.endswith("__init__.py"):
                names += [
                    imp[0] for imp in entry["imports"] if imp[2] and not imp[0].startswith("_")
                ]
        out = []
        for name in dict.fromkeys(names):
            found = self._tables.resolve(module.path, name)
            if found is not None:
                out.append(found)
        return out


def _field_text(field: Definition) -> str:
    text = field.name + (f": {field.annotation}" if field.annotation else "")
    default = field.default
    if default is not None and default.startswith(("default_factory=", "factory=")):
        default = field.value  # ``field(default_factory=list)`` reads as written
    return text + (f" = {default}" if default is not None else "")


def index_tools(
    env: Mapping[str, Any] | str | Path,
    *,
    cache_dir: str | Path | None = None,
    max_matches: int = 8,
    max_lines: int = 40,
    index: Callable[[], CodeIndex] | None = None,
) -> list[BaseTool]:
    r"""Build the six code-index tools over one tree's :class:`CodeIndex`.

    They are ``find_definition``, ``signature``, ``class_bases``, ``docstring``, ``references``
    and ``members``.

    The index is built (or loaded from its cache) on the first call of any of the tools and
    shared by all six. Each tool takes one ``name`` and answers in lines that start with
    ``path:line`` and the source line there; an unknown name raises ``ToolException`` naming
    close names and ``grep``, which stays the tool for text and non-Python files.

    Args:
        env: the run's environment (its ``"root"``, default ``"."``, and optional
            ``"index_cache_dir"``), or the root folder itself.
        cache_dir: where the index cache goes; overrides ``env["index_cache_dir"]``.
        max_matches: most definitions ``find_definition`` lists.
        max_lines: most lines of a docstring, of members and of references.
        index: where the tools get their index instead of building one (a graph whose checks
            hold the tree's index passes it, so one index serves both); called on first use.

    Returns:
        The tools, in the order find_definition, signature, class_bases, docstring, references,
        members.

    Raises:
        ValueError: the root is not an existing directory, or a limit is below 1.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.py").write_text("class A(dict):\n    x: int = 1\n")
        >>> find_definition, signature, *_ = index_tools({"root": folder}, cache_dir=folder / "c")
        >>> print(find_definition.invoke({"name": "A"}))
        a.py:1 class A(dict):
          class A in a, lines 1-2
    """
    for label, value in [("max_matches", max_matches), ("max_lines", max_lines)]:
        if value < 1:
            raise ToolSetupError(f"{label} must be at least 1, got {value}; pass {label}=1 or more")
    if isinstance(env, Mapping):
        root, cache_dir = env.get("root", "."), cache_dir or env.get("index_cache_dir")
    else:
        root = env
    box = Sandbox(Path(root))
    built: list[CodeIndex] = []

    def get_index() -> CodeIndex:
        if not built:
            built.append(index() if index is not None else CodeIndex.build(box.root, cache_dir))
        return built[0]

    return make_tools(get_index, max_matches, max_lines)
