"""Cached, sandboxed reads of a source tree, and the statements the claims checker reads there."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tierflow.graphs.codebase_qa.grounding import file_lines
from tierflow.tools import Sandbox, SandboxError

__all__ = ["Cite", "Tree", "statement", "span", "defines", "sets", "class_bases"]

Cite = tuple[str, int]  # path relative to the root, 1-based line


def statement_end(lines: list[str], line: int) -> int:
    """The last line of the logical statement that starts at ``line`` (at most 8 lines)."""
    depth, end = 0, line
    for end in range(line, min(len(lines), line + 7) + 1):
        text = lines[end - 1]
        depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
        if depth <= 0:
            break
    return end


def statement(lines: list[str], line: int) -> str:
    """The logical statement that starts at ``line`` (brackets balanced, at most 8 lines)."""
    return " ".join(t.strip() for t in lines[line - 1 : statement_end(lines, line)])


def span(lines: list[str], line: int) -> tuple[int, int]:
    """First and last line of the block a ``def``/``class`` line opens (by indentation)."""
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    last = line
    for n in range(line + 1, len(lines) + 1):
        text = lines[n - 1]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            if not text.lstrip().startswith((")", "]", "}")):
                break
        last = n
    return line, last


def defines(name: str) -> re.Pattern[str]:
    """A ``def``/``class`` line of ``name``, or an assignment to it."""
    return re.compile(
        rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b"
        rf"|^\s*(?:self\.)?{re.escape(name)}\s*(?::[^=]+)?=(?!=)"
    )


def sets(name: str) -> re.Pattern[str]:
    """``name = v``, ``self.name = v``, ``name: T = v`` or a keyword default ``name=v``."""
    return re.compile(rf"(?:^|[\s(,.])(?:self\.)?{re.escape(name)}\s*(?::[^=()]*?)?=(?!=)\s*(.+)")


class Tree:
    """Cached reads of a sandboxed source tree."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: dict[str, list[str] | None] = {}
        self._all: list[str] | None = None

    def lines(self, path: str) -> list[str] | None:
        path = path.removeprefix("./")
        if path not in self._files:
            self._files[path] = file_lines(self.root, path)
        return self._files[path]

    def text(self, cite: Cite) -> str | None:
        lines = self.lines(cite[0])
        if lines is None or not 0 < cite[1] <= len(lines):
            return None
        return statement(lines, cite[1])

    def files(self) -> list[str]:
        if self._all is None:
            try:
                base = Sandbox(Path(self.root)).resolve(".")
            except (SandboxError, OSError, ValueError):
                base = None
            found = sorted(
                str(p.relative_to(base))
                for p in (base.rglob("*.py") if base else [])
                if not any(part.startswith(".") for part in p.relative_to(base).parts)
            )
            self._all = found[:2000]
        return self._all

    def find(self, pattern: re.Pattern[str], prefer: Iterable[str] = ()) -> list[Cite]:
        """Lines matching ``pattern``: in the ``prefer`` files first, then the whole tree."""
        ordered = list(dict.fromkeys([*prefer, *self.files()]))
        hits = []
        for path in ordered:
            for n, text in enumerate(self.lines(path) or [], start=1):
                if pattern.search(text):
                    hits.append((path, n))
        return hits


def class_bases(code: str, name: str) -> list[str] | None:
    """The bases ``code`` (a ``class`` statement of ``name``) lists; None when it is not one."""
    m = re.search(rf"\bclass\s+{re.escape(name)}\s*\(([^)]*)\)", code)
    if not m:
        return [] if re.search(rf"\bclass\s+{re.escape(name)}\s*:", code) else None
    parts, depth, here = [], 0, ""
    for ch in m.group(1) + ",":  # commas inside brackets (``CallbackDict[str, Any]``) split none
        depth += ch in "[(" and 1 or -(ch in "])" and 1)
        if ch == "," and depth == 0:
            parts.append(here.strip())
            here = ""
        else:
            here += ch
    parts = [p for p in parts if p and "=" not in p]
    return [p.split("[")[0].split(".")[-1] + (p[p.find("[") :] if "[" in p else "") for p in parts]
