"""Paths a small model mangles, mapped back to the tree's own files when only one fits.

Seen in real answers about trees nobody tuned on: ``#/models.py`` and ``models.py`` for
``_models.py`` (a leading underscore read as markdown), ``/client.py:879`` (the line inside the
path), ``httpx/_client.py`` (the package directory the tree's root already is), and
``exceptions.py:146`` written in the answer's text for ``_exceptions.py``. Each is mapped to the
one file of the tree it can mean; a path two files could mean, or none, is left as it is (the
check then says it does not exist, for the answer to be repaired).

A path that means no file at all (``#/$defs/Citation``, the answer schema's own reference, or a
tool's name such as ``search``) keeps its line: :func:`shown_lines` and :func:`resolve_cite`'s
``shown`` map it to the one file the answer was shown that line of.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

__all__ = ["resolve_path", "resolve_cite", "fix_file_names", "shown_lines"]

_LINE_IN_PATH = re.compile(r"^(?P<path>.+?\.pyi?)(?::(?P<line>\d+))(?::\d+)?$")
_FILE_TOKEN = re.compile(r"(?<![\w./#-])[#/]*[\w./-]*\w\.pyi?\b")
_SHOWN = re.compile(r"(?<![\w./-])([\w./-]*\w\.pyi?):(\d+)\b")


def _bare(name: str) -> str:
    return name.lstrip("_#/")


def resolve_path(path: str, files: list[str]) -> str | None:
    """The one file of ``files`` (paths relative to the root) that ``path`` can mean, or None.

    An exact path wins; then the files it is a suffix of (``pkg/_client.py`` for
    ``httpx/pkg/_client.py`` or ``_client.py``); then the files whose name, without leading
    underscores, is the path's name without them (``#/models.py`` -> ``_models.py``).
    """
    clean = path.strip().strip("`'\"").removeprefix("./")
    if clean in files:
        return clean
    clean = clean.lstrip("#/")
    if clean in files:
        return clean
    parts = PurePosixPath(clean).parts
    for start in range(len(parts)):  # drop leading directories the root already is
        tail = "/".join(parts[start:])
        ends = [f for f in files if f == tail or f.endswith("/" + tail)]
        if len(ends) == 1:
            return ends[0]
        if ends:
            return None
    name = _bare(PurePosixPath(clean).name)
    same = [f for f in files if _bare(PurePosixPath(f).name) == name]
    return same[0] if len(same) == 1 else None


def shown_lines(text: str, files: list[str]) -> dict[int, set[str]]:
    """Line number -> the files of ``files`` whose ``path:line`` ``text`` shows with it."""
    out: dict[int, set[str]] = {}
    for m in _SHOWN.finditer(text):
        if m.group(1) in files:
            out.setdefault(int(m.group(2)), set()).add(m.group(1))
    return out


def resolve_cite(
    path: str, line: int, files: list[str], shown: dict[int, set[str]] | None = None
) -> tuple[str, int] | None:
    """A citation with its path resolved; ``path:line`` inside the path gives the line.

    A path that is no file's and means none (``#/$defs/Citation``, ``search``) takes the file
    of ``shown`` (what the answer was shown, :func:`shown_lines`) that has that line, when
    exactly one has it.
    """
    m = _LINE_IN_PATH.match(path.strip())
    if m:
        path, line = m.group("path"), int(m.group("line"))
    found = resolve_path(path, files)
    if found is None and shown and not path.strip().endswith((".py", ".pyi")):
        owners = shown.get(line, set())
        found = next(iter(owners)) if len(owners) == 1 else None
    return (found, line) if found is not None else None


def fix_file_names(text: str, files: list[str]) -> str:
    """``text`` with each file name that is no file of the tree, but means one, replaced by it."""

    def fix(m: re.Match[str]) -> str:
        token = m.group(0)
        if any(PurePosixPath(f).name == PurePosixPath(token).name for f in files):
            return token  # a real file's name (its directories are the answer's business)
        found = resolve_path(token, files)
        return found if found is not None else token

    return _FILE_TOKEN.sub(fix, text)
