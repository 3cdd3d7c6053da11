"""Link the per-file entries: resolve imports and re-exports to definitions, rank lookups."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from tierflow.tools._index_facts import FIELD_FLAVORS, INHERITED_FLAVORS
from tierflow.tools._index_model import Definition, Kind, ReExport

__all__ = ["Tables"]

# Several matches in one tier: classes and functions before constants, members last.
_KIND_ORDER = {
    kind: rank
    for rank, kind in enumerate(
        (
            Kind.CLASS,
            Kind.FUNCTION,
            Kind.MODULE_CONSTANT,
            Kind.MODULE,
            Kind.METHOD,
            Kind.FIELD,
            Kind.CLASS_ATTRIBUTE,
            Kind.ATTRIBUTE,
        )  # fmt: skip
    )
}
_MAX_HOPS = 24  # import chains longer than this are cycles in practice


def _plain(expr: str) -> str:
    return expr.split("[", 1)[0].split("(", 1)[0].strip()


def _is_overload(found: Definition) -> bool:
    return any(_plain(d).rsplit(".", 1)[-1] == "overload" for d in found.decorators)


def _is_test(path: str) -> bool:
    return any(p in ("tests", "test", "testing") or p.startswith("test_") for p in path.split("/"))


class Tables:
    """Every definition of a tree, with its modules' imports, ready for name lookups.

    Args:
        entries: ``{relative path: parse_file entry}`` from the build.
        root_name: the root folder's name; absolute imports that start with it (``langgraph.x``
            when the root is the ``langgraph`` folder) are looked up without it.
    """

    def __init__(self, entries: dict[str, Any], root_name: str) -> None:
        self.entries = entries
        self.root_name = root_name
        self.local: dict[str, dict[str, list[Definition]]] = {}
        self.module_defs: dict[str, Definition] = {}
        self.modules: dict[str, str] = {}
        for rel, entry in sorted(entries.items()):
            table: dict[str, list[Definition]] = defaultdict(list)
            for data in entry["defs"]:
                definition = Definition.from_json(data)
                if definition.kind is Kind.MODULE:
                    self.module_defs[rel] = definition
                else:
                    table[definition.qualname].append(definition)
            # An ``@overload`` stub is a definition too, but the implementation answers first.
            self.local[rel] = {q: sorted(f, key=_is_overload) for q, f in table.items()}
            self.modules.setdefault(entry["module"], rel)
        for rel in sorted(entries):  # path-based names find files outside any package chain
            dotted = rel[:-3].replace("/", ".").removesuffix(".__init__")
            self.modules.setdefault(dotted, rel)
        self._flavor_memo: dict[tuple[str, str], str] = {}
        self._link_flavors()
        self._link_reexports()
        self.by_qual: dict[str, list[Definition]] = defaultdict(list)
        self.by_name: dict[str, list[Definition]] = defaultdict(list)
        for table in self.local.values():
            for qual, found in table.items():
                self.by_qual[qual] += found
                self.by_name[found[0].name] += found
        for module in self.module_defs.values():
            self.by_qual[module.qualname].append(module)
            self.by_name[module.name].append(module)

    # --- modules and imports ------------------------------------------------------------------

    def module_rel(self, name: str) -> str | None:
        """The file of a module name (import name, path-based, or prefixed by the root's name)."""
        if name in self.modules:
            return self.modules[name]
        head = f"{self.root_name}."
        if self.root_name and name.startswith(head):
            return self.modules.get(name[len(head) :])
        return None

    def module_def(self, rel: str) -> Definition:
        """The :data:`Kind.MODULE` definition of a file."""
        return self.module_defs[rel]

    def resolve(self, rel: str, name: str, hops: int = 0) -> Definition | None:
        """What ``name`` means at the top level of module ``rel``: followed through imports."""
        if hops > _MAX_HOPS:
            return None
        own = self.local[rel].get(name)
        if own:
            return own[0]
        entry = self.entries[rel]
        for local, target, imported, _line in entry["imports"]:
            if local == name and (found := self._follow(target, imported, hops)):
                return found
        for target, _line in entry["stars"]:
            star_rel = self.module_rel(target)
            if star_rel and star_rel != rel and not name.startswith("_"):
                if found := self.resolve(star_rel, name, hops + 1):
                    return found
        sub = self.module_rel(f"{entry['module']}.{name}")
        return self.module_def(sub) if sub else None

    def _follow(self, target: str, imported: str | None, hops: int) -> Definition | None:
        if imported is None:
            target_rel = self.module_rel(target)
            return self.module_def(target_rel) if target_rel else None
        target_rel = self.module_rel(target)
        if target_rel and (found := self.resolve(target_rel, imported, hops + 1)):
            return found
        sub = self.module_rel(f"{target}.{imported}")
        return self.module_def(sub) if sub else None

    def import_site(self, rel: str, local: str) -> tuple[int, str] | None:
        """``(line, module)`` of the import that binds ``local`` in module ``rel``, if any."""
        for name, target, _imported, line in self.entries[rel]["imports"]:
            if name == local:
                return line, target
        return None

    def external_imports(self, name: str) -> list[tuple[str, int, str]]:
        """``(path, line, module)`` where ``name`` is imported from outside the tree."""
        out = []
        for rel, entry in sorted(self.entries.items()):
            for local, target, imported, line in entry["imports"]:
                if name in (local, imported) and not self.module_rel(target):
                    out.append((rel, line, target))
        return out

    # --- members and dotted names --------------------------------------------------------------

    def member(
        self, owner: Definition, name: str, seen: set[str] | None = None
    ) -> Definition | None:
        """A class's member (own, then inherited from in-tree bases) or a module's name."""
        if owner.kind is Kind.MODULE:
            return self.resolve(owner.path, name)
        if owner.kind is not Kind.CLASS:
            return None
        own = self.local[owner.path].get(f"{owner.qualname}.{name}")
        if own:
            return own[0]
        seen = seen if seen is not None else set()
        seen.add(owner.dotted)
        for base in self.base_defs(owner):
            if base.dotted not in seen and (found := self.member(base, name, seen)):
                return found
        return None

    def dotted(self, rel: str, dotted: str) -> Definition | None:
        """Resolve ``a.b.c`` as written in module ``rel`` (a base class, a decorator)."""
        head, *rest = _plain(dotted).split(".")
        found = self.resolve(rel, head)
        for part in rest:
            if found is None:
                return None
            found = self.member(found, part)
        return found

    def base_defs(self, klass: Definition) -> list[Definition]:
        """The in-tree classes a class's bases name (keywords such as ``metaclass=`` skipped)."""
        found = [self.dotted(klass.path, b) for b in klass.bases if "=" not in b and "*" not in b]
        return [d for d in found if d is not None and d.kind is Kind.CLASS and d is not klass]

    def ancestors(self, klass: Definition) -> list[Definition]:
        """In-tree base classes, breadth first, each once."""
        out: list[Definition] = []
        todo = self.base_defs(klass)
        while todo:
            base = todo.pop(0)
            if base.dotted != klass.dotted and all(base.dotted != o.dotted for o in out):
                out.append(base)
                todo += self.base_defs(base)
        return out

    # --- link-time facts that need other files ------------------------------------------------

    def _flavor(self, klass: Definition, depth: int = 0) -> str:
        key = (klass.path, klass.qualname)
        if key not in self._flavor_memo:
            self._flavor_memo[key] = klass.flavor  # a cycle ends here
            if not klass.flavor and depth < _MAX_HOPS:
                for base in self.base_defs(klass):
                    inherited = self._flavor(base, depth + 1)
                    if inherited in INHERITED_FLAVORS:
                        self._flavor_memo[key] = inherited
                        break
        return self._flavor_memo[key]

    def _link_flavors(self) -> None:
        """A class whose base (in another file) is a pydantic model, TypedDict, ... is one too."""
        for table in self.local.values():
            for qual, found in list(table.items()):
                klass = found[0]
                if klass.kind is not Kind.CLASS or klass.flavor or not klass.bases:
                    continue
                flavor = self._flavor(klass)
                if not flavor:
                    continue
                table[qual] = [replace(klass, flavor=flavor), *found[1:]]
                if flavor in FIELD_FLAVORS:
                    self._fields_from_attributes(table, klass, flavor)

    @staticmethod
    def _fields_from_attributes(
        table: dict[str, list[Definition]], klass: Definition, flavor: str
    ) -> None:
        for member in klass.members:
            found = table.get(member)
            if not found or found[0].kind is not Kind.CLASS_ATTRIBUTE:
                continue
            attr = found[0]
            note = attr.annotation or ""
            if (
                note
                and "ClassVar" not in note
                and not (flavor == "pydantic" and attr.name.startswith("_"))
            ):
                table[member] = [replace(attr, kind=Kind.FIELD), *found[1:]]

    def _link_reexports(self) -> None:
        """Record on each definition the package ``__init__``/``__all__`` imports that re-export it."""
        sites: dict[tuple[str, str], list[ReExport]] = defaultdict(list)
        for rel, entry in sorted(self.entries.items()):
            exported = set(entry["all"] or ())
            is_init = rel == "__init__.py" or rel.endswith("/__init__.py")
            for local, target, imported, line in entry["imports"]:
                if imported is None or not (is_init or local in exported):
                    continue
                found = self._follow(target, imported, 0)
                if found is not None and found.kind is not Kind.MODULE and found.path != rel:
                    public = f"{entry['module']}.{local}"
                    sites[(found.path, found.qualname)].append(
                        ReExport(public, rel, line, local in exported)
                    )
        for (rel, qual), found_sites in sites.items():
            first, *others = self.local[rel][qual]
            self.local[rel][qual] = [replace(first, reexported_from=tuple(found_sites)), *others]

    # --- ranked lookup -------------------------------------------------------------------------

    def _rank(self, found: Definition) -> tuple[Any, ...]:
        exported = bool(found.reexported_from)
        private = any(p.startswith("_") and p != "__init__.py" for p in found.path.split("/"))
        return (
            _KIND_ORDER[found.kind],
            _is_overload(found),
            _is_test(found.path),
            not exported,
            private,
            found.path,
            found.line,
        )

    def find(self, query: str) -> list[Definition]:
        """Definitions ``query`` names: exact qualname, then via its module path, then by name."""
        parts = query.split(".")
        exact = [*self.by_qual.get(query, [])]
        exact += [d for d in self.by_name.get(parts[-1], []) if d.dotted == query]
        via_module: list[Definition] = []
        for cut in range(len(parts) - 1, 0, -1):
            rel = self.module_rel(".".join(parts[:cut]))
            if rel and (hit := self.dotted(rel, ".".join(parts[cut:]))):
                via_module.append(hit)
        if (rel := self.module_rel(query)) is not None:
            via_module.append(self.module_def(rel))
        if len(parts) > 1:
            for owner in self.by_qual.get(".".join(parts[:-1]), []):
                if hit := self.member(owner, parts[-1]):
                    via_module.append(hit)
        tail = "." + query
        others = [
            d
            for d in self.by_name.get(parts[-1], [])
            if d.qualname.endswith(tail) or d.dotted.endswith(tail)
        ]
        if len(parts) == 1:
            others += [d for d in self.by_name.get(query, []) if d.kind is not Kind.MODULE]
        out: list[Definition] = []
        for tier in (exact, via_module, others):
            for found in sorted(tier, key=self._rank):
                if all(found.path != o.path or found.qualname != o.qualname for o in out):
                    out.append(found)
        return out
