"""Grep evidence for the search subagent, its grep shortcut, and the supervisor's fallback plan.

The search subagent gets where its query is defined (the code index, for a Python name) and the
lines grep finds for it before its first model step (:func:`prefetch_grep`), and finishes with no
model call when the index (or, for other trees, grep) found where the query's name is defined
(:func:`shortcut_search`). :func:`fallback_plan` searches for the question's names when the
supervisor's plan is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.tools import ToolException
from pydantic import BaseModel

from tierflow.graphs.codebase_qa._facts import index_for, lookup
from tierflow.graphs.codebase_qa._named_like import named_like
from tierflow.graphs.codebase_qa.schemas import Finding, Findings, SearchTask
from tierflow.tools import fs_tools, index_tools

__all__ = [
    "SEARCH_NAME", "search_tools", "definitions", "place_of", "grep_hits", "prefetch_grep",
    "shortcut_search", "fallback_plan",
]  # fmt: skip

SEARCH_NAME = "search"  # the search subagent's name, which fallback_plan delegates to


def search_tools(env: Mapping[str, Any]) -> list[Any]:
    """The file tools (list_files, grep, read_file) and the code-index tools over ``env["root"]``.

    The index tools (find_definition, signature, class_bases, docstring, references, members)
    answer for Python names; grep stays the tool for text and other files. They share the one
    index the checks use (:func:`~._facts.index_for`), built on first use.
    """
    root = env.get("root", ".")

    def shared() -> Any:
        index = index_for(root)
        if index is None:  # no Python here: the tools answer with their own (empty) index
            from tierflow.tools import CodeIndex

            return CodeIndex.build(root, env.get("index_cache_dir"))
        return index

    return [*fs_tools(root), *index_tools(env, index=shared)]


def _fs_grep(env: Mapping[str, Any]) -> Any:
    return {t.name: t for t in fs_tools(env.get("root", "."))}["grep"]


# --- grep evidence ----------------------------------------------------------------------------


def _grep_lines(env: Mapping[str, Any], pattern: str, glob: str) -> list[str]:
    grep = _fs_grep(env)
    try:
        text = str(grep.invoke({"pattern": pattern, "glob": glob}))
    except ToolException:
        return []
    return [ln for ln in text.splitlines() if not ln.startswith(("no matches", "note:", "..."))]


def definitions(task: SearchTask, env: Mapping[str, Any]) -> list[str]:
    """Where the query's name is defined, as ``path:line: code`` lines.

    A Python name is looked up in the code index (definition lines, re-exports followed, never
    an import site); grep finds def/class lines, then assignments, in other trees.
    """
    name = task.query.split()[-1] if task.query.split() else ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", name):
        return []
    index = index_for(env.get("root", ".")) if task.file_glob.endswith(".py") else None
    if index is not None:
        found = [d for d in lookup(index, name) if d.kind != "module"]
        if found:
            return [f"{d.path}:{d.line}: {index.line_text(d.path, d.line)}" for d in found[:10]]
    if "." in name:
        name = name.rsplit(".", 1)[-1]
    defs = _grep_lines(env, rf"\b(def|class)\s+{name}\b", task.file_glob)
    # `name = ...` or `name: T = ...`; PEP 8 keyword arguments (`name=value`) have no spaces.
    assigns = _grep_lines(env, rf"^\s*(self\.)?{name}(\s+=\s|\s*:[^=]+=)", task.file_glob)
    return defs + [ln for ln in assigns if ln not in defs]


def place_of(grep_line: str) -> tuple[str, int]:
    """``path:LINE: text`` (grep output) -> (path, LINE)."""
    path, number, _ = grep_line.split(":", 2)
    return path, int(number)


def grep_hits(task: SearchTask, env: Mapping[str, Any]) -> list[str]:
    """Lines matching the query, definitions first (what a code search should surface)."""
    first = definitions(task, env)
    rest = _grep_lines(env, re.escape(task.query), task.file_glob)
    return first + [ln for ln in rest if ln not in first]


def prefetch_grep(task: BaseModel, env: Mapping[str, Any]) -> str:
    """Grep the task's query before the first model step (free, deterministic evidence)."""
    assert isinstance(task, SearchTask)
    defined = definitions(task, env)
    mentions = [ln for ln in _grep_lines(env, task.query, task.file_glob) if ln not in defined]
    parts = []
    # A phrase ("cookie size") is most often the words of a name (``max_cookie_size``).
    index = index_for(env.get("root", ".")) if len(task.query.split()) > 1 else None
    if index is not None and (like := named_like(index, task.query)):
        shown = [f"{d.path}:{d.line}: {index.line_text(d.path, d.line)}" for d in like]
        parts.append(f"Definitions named like {task.query!r}:\n" + "\n".join(shown))
    if defined:
        parts.append(f"Where {task.query!r} is defined:\n" + "\n".join(defined[:10]))
    if mentions:
        parts.append(f"Other lines mentioning {task.query!r}:\n" + "\n".join(mentions[:20]))
    return "\n\n".join(parts) or f"grep({task.query!r}) found no lines."


def shortcut_search(task: BaseModel, env: Mapping[str, Any]) -> Findings | None:
    """Findings straight from grep when it found where the query's identifier is defined.

    The search subagent then finishes with no model call; a phrase, or a name grep cannot find
    a definition of, goes to the model as usual.
    """
    assert isinstance(task, SearchTask)
    words = task.query.split()
    if len(words) > 1 and re.fullmatch(r"[a-z]+", words[-1]):
        return None  # "cookie size": a phrase, not the name ``size`` (the model reads the leads)
    defined = definitions(task, env)[:3]
    if not defined:
        return None
    found = []
    for line in defined:
        path, number = place_of(line)
        found.append(Finding(path=path, line=number, snippet=line.split(":", 2)[2].strip()))
    where = ", ".join(f"{f.path}:{f.line}" for f in found)
    return Findings(findings=found, summary=f"{task.query} is defined at {where}")


_STOP = {
    "which",
    "what",
    "where",
    "does",
    "that",
    "with",
    "from",
    "this",
    "class",
    "function",
    "defined",
    "default",
    "value",
    "the",
    "is",
    "are",
    "of",
    "in",
    "for",
    "how",
    "and",
}


def fallback_plan(state: Mapping[str, Any]) -> list[tuple[str, BaseModel]]:
    """Search for the question's identifiers when the supervisor's plan is unusable."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", state.get("request", ""))
    keys = [w for w in words if w.lower() not in _STOP]
    keys.sort(key=lambda w: (not ("_" in w or any(c.isupper() for c in w[1:])), -len(w)))
    return [(SEARCH_NAME, SearchTask(query=k)) for k in keys[:2]]
