"""Grounding for file:line citations: check them against a sandboxed tree, and snap near misses.

Small models often quote the right code with the wrong line number, escape quotes, or write
``./path``. :func:`locate` fixes what can be fixed deterministically (the quoted code decides
the line); :func:`check` says precisely what is still wrong, for the model to repair.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from tierflow.tools import Sandbox, SandboxError

__all__ = ["Place", "file_lines", "normalize_code", "locate", "check"]

Place = tuple[str, int, str | None]  # path relative to the root, 1-based line, quoted code


def file_lines(root: str, path: str) -> list[str] | None:
    """Lines of ``path`` under ``root``, or None when it is not a readable file inside it."""
    try:
        real = Sandbox(Path(root)).resolve(path.removeprefix("./"))
        return real.read_text(errors="replace").splitlines()
    except (SandboxError, OSError, ValueError):
        return None


def normalize_code(text: str) -> str:
    """First non-blank line, unescaped, with quotes unified and white space folded."""
    lines = [ln for ln in html.unescape(text).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    return re.sub(r"\s+", " ", first.replace("'", '"').replace("`", "")).strip()


def _matches(code: str, line: str) -> bool:
    want, have = normalize_code(code), normalize_code(line)
    return bool(want) and (want in have or (len(have) > 8 and have in want))


def locate(root: str, place: Place) -> Place | None:
    """The place with its path cleaned and its line snapped to where the quoted code is.

    Returns None when the file does not exist or the quoted code is nowhere in it.
    """
    path, line, code = place
    path = path.removeprefix("./")
    lines = file_lines(root, path)
    if lines is None:
        return None
    if not code:
        return (path, line, code) if 0 < line <= len(lines) else None
    hits = [n for n, text in enumerate(lines, start=1) if _matches(code, text)]
    if not hits:
        return None
    best = min(hits, key=lambda n: abs(n - line))
    return path, best, lines[best - 1].strip()


def check(root: str, places: list[Place]) -> str | None:
    """The first problem with ``places`` (missing file or line, code not on that line), or None."""
    for path, line, code in places:
        lines = file_lines(root, path)
        if lines is None or not 0 < line <= len(lines):
            return f"{path}:{line} does not exist (copy path and line from the tool output)"
        text = lines[line - 1]
        if code and not any(_matches(code, t) for t in lines[max(0, line - 4) : line + 3]):
            return f"{path}:{line} does not contain {code!r}; it reads {text.strip()!r}"
    return None
