"""Read-only file tools (list_files, grep, read_file) confined to one sandbox directory."""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import regex as rx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import Field

from tierflow.tools._args import ToolArgs
from tierflow.tools._sandbox import Sandbox, SandboxError, ToolSetupError

__all__ = ["Sandbox", "SandboxError", "ToolSetupError", "fs_tools"]

_BINARY_PROBE_BYTES = 4096
_GREP_MAX_FILE_BYTES = 1_000_000
_GREP_LINE_CHARS = 200
# One grep call's time: a catastrophic pattern ("(a+)+b") or a huge tree cannot hang the step.
# The `regex` engine (same syntax as `re`) can stop a search in the middle, which `re` cannot.
_GREP_BUDGET_S = 5.0
_READ_LINE_CHARS = 1000


def _shown(rel: str) -> str:
    """Normalise a validated relative path for display, e.g. ``./src//a.py`` -> ``src/a.py``."""
    return posixpath.normpath(rel.strip() or ".")


def _glob_matches(shown: str, pattern: str) -> bool:
    """Match a file name glob; a pattern with '/' is matched against the whole relative path."""
    if "/" not in pattern:
        return fnmatch.fnmatch(posixpath.basename(shown), pattern)
    if pattern.startswith("**/") and fnmatch.fnmatch(shown, pattern[3:]):
        return True
    return fnmatch.fnmatch(shown, pattern)


def _is_binary(path: Path) -> bool:
    with path.open("rb") as fh:
        return b"\x00" in fh.read(_BINARY_PROBE_BYTES)


def _files_under(box: Sandbox, rel: str, glob: str) -> list[tuple[str, Path]]:
    """Files under ``rel`` matching ``glob``, sorted by display path; a file path is itself."""
    real, shown = box.resolve(rel), _shown(rel)
    if real.is_file():
        return [(shown, real)]
    if not real.is_dir():
        raise ToolException(
            f"no such file or folder: {rel!r}. Use list_files('.') to see what exists."
        )
    prefix = "" if shown == "." else f"{shown}/"
    return sorted(f for f in box.walk_files(real, prefix) if _glob_matches(f[0], glob))


class _ListFilesArgs(ToolArgs):
    path: str = Field(".", description="Folder to list, relative to the project root. '.' = root.")
    pattern: str = Field("*", description="File name pattern, e.g. '*.py'. '*' = all files.")


class _GrepArgs(ToolArgs):
    pattern: str = Field(description="Text or regular expression to search for.")
    path: str = Field(".", description="Folder or file to search, relative to the root. '.' = all.")
    glob: str = Field("*.py", description="Only search files whose name matches, e.g. '*.md'.")


class _ReadFileArgs(ToolArgs):
    path: str = Field(description="File to read, relative to the project root, e.g. 'src/app.py'.")
    start_line: int = Field(1, description="First line to read (1 = start of file).")
    end_line: int | None = Field(None, description="Last line to read; leave empty for a page.")


def _list_files(box: Sandbox, limit: int, path: str, pattern: str) -> str:
    files = [shown for shown, _ in _files_under(box, path, pattern)]
    if not files:
        return f"no files matching {pattern!r} under {_shown(path)}"
    lines = files[:limit]
    if len(files) > limit:
        lines.append(f"... {len(files) - limit} more (narrow the path or pattern)")
    return "\n".join(lines)


def _compile(pattern: str) -> tuple[rx.Pattern[str], str | None]:
    """Compile a regex, falling back to a literal search; returns the note to show, if any."""
    try:
        return rx.compile(pattern), None
    except rx.error as exc:
        note = f"note: {pattern!r} is not a valid regex ({exc}); searched for it as literal text"
        return rx.compile(rx.escape(pattern)), note


def _grep_file(regex: rx.Pattern[str], shown: str, real: Path, deadline: float) -> Iterator[str]:
    try:
        if real.stat().st_size > _GREP_MAX_FILE_BYTES or _is_binary(real):
            return
        text = real.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    # Split on "\n" only (read_text already folded \r\n and \r) so numbers match read_file's.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime()
        try:
            hit = regex.search(line, timeout=left)
        except TimeoutError:
            raise _OutOfTime() from None
        if hit:
            yield f"{shown}:{number}: {line.strip()[:_GREP_LINE_CHARS]}"


class _OutOfTime(Exception):
    """A grep call used up its time budget."""


_GLOB_ONLY = re.compile(r"[*.?]*\*[*.?]*\w{0,5}|\*?\.\w{1,5}")
_LINE_NOISE = re.compile(r"^(\.\*)+|(\.\*)+$|(\\n|\n|\$)+$")


def _search(
    files: list[tuple[str, Path]], regex: rx.Pattern[str], limit: int, deadline: float
) -> tuple[list[str], int]:
    shown_lines, total = [], 0
    searched = 0
    try:
        for shown, real in files:
            for hit in _grep_file(regex, shown, real, deadline):
                total += 1
                if total <= limit:
                    shown_lines.append(hit)
            searched += 1
    except _OutOfTime:
        if total == 0 and searched == 0:
            raise ToolException(
                f"grep {regex.pattern!r} ran out of time ({_GREP_BUDGET_S:.0f} s) on the first "
                "file: the pattern backtracks badly. Search for a plain word or identifier."
            ) from None
        shown_lines.append(
            f"note: grep stopped after {_GREP_BUDGET_S:.0f} s having searched {searched} of "
            f"{len(files)} files; narrow the path or glob, or simplify the pattern"
        )
    return shown_lines, total


def _grep(box: Sandbox, limit: int, pattern: str, path: str, glob: str) -> str:
    # Small models often wrap a plain word in '.*' or end it with a newline, which can never
    # match line by line; strip that noise before searching.
    cleaned = _LINE_NOISE.sub("", pattern).strip() or pattern
    if _GLOB_ONLY.fullmatch(pattern.strip()) or _GLOB_ONLY.fullmatch(cleaned):
        raise ToolException(
            f"{pattern!r} looks like a file-name glob; grep searches inside files. Give a word "
            "or identifier to find as pattern, and put the file glob in glob (e.g. '*.py')."
        )
    if not cleaned.strip():
        raise ToolException("pattern is empty; give the text or regex to search for.")
    files = _files_under(box, path, glob)
    regex, note = _compile(cleaned)
    deadline = time.monotonic() + _GREP_BUDGET_S
    shown_lines, total = _search(files, regex, limit, deadline)
    if total == 0 and not regex.flags & rx.IGNORECASE and time.monotonic() < deadline:
        anycase = rx.compile(regex.pattern, rx.IGNORECASE)
        shown_lines, total = _search(files, anycase, limit, deadline)
        if total:
            note = f"note: no exact-case match for {cleaned!r}; showing case-insensitive matches"
    if total == 0:
        shown_lines.append(f"no matches for {cleaned!r} under {_shown(path)}")
    elif total > limit:
        shown_lines.append(f"... {total - limit} more matches")
    return "\n".join(([note] if note else []) + shown_lines)


def _open_text(box: Sandbox, path: str) -> Path:
    real = box.resolve(path)
    if real.is_dir():
        raise ToolException(f"{path!r} is a folder, not a file. Use list_files({path!r}).")
    if not real.exists():
        raise ToolException(f"no such file: {path!r}. Use list_files('.') to see what exists.")
    if not real.is_file():
        raise ToolException(f"{path!r} is not a regular file and cannot be read.")
    if _is_binary(real):
        raise ToolException(
            f"{path!r} looks binary (it contains NUL bytes); only text is readable."
        )
    return real


def _bounded_lines(fh: Any, keep: int) -> Iterator[tuple[str, int]]:
    """``(first keep+ chars, length)`` of each line; a 200 MB line never sits in memory whole."""
    while True:
        head = fh.readline(keep + 1)
        if not head:
            return
        size = len(head.rstrip("\r\n"))
        if head.endswith("\n"):
            yield head, size
            continue
        while True:  # the rest of a long line, read in chunks and dropped
            chunk = fh.readline(1 << 16)
            size += len(chunk.rstrip("\r\n"))
            if not chunk or chunk.endswith("\n"):
                break
        yield head, size


def _read_file(box: Sandbox, limit: int, path: str, start_line: int, end_line: int | None) -> str:
    real, shown = _open_text(box, path), _shown(path)
    if end_line is not None and end_line < start_line:
        raise ToolException(f"end_line {end_line} is before start_line {start_line}.")
    last = start_line + limit - 1 if end_line is None else min(end_line, start_line + limit - 1)
    picked, total = [], 0
    with real.open(encoding="utf-8", errors="replace") as fh:
        for total, (head, size) in enumerate(_bounded_lines(fh, _READ_LINE_CHARS), start=1):
            if start_line <= total <= last:
                text = head.rstrip("\r\n")
                if size > _READ_LINE_CHARS:
                    text = f"{text[:_READ_LINE_CHARS]} ... (+{size - _READ_LINE_CHARS} chars)"
                picked.append(f"{total}: {text}")
    if total == 0:
        return f"{shown} is empty (0 lines)"
    if not 1 <= start_line <= total:
        raise ToolException(
            f"start_line {start_line} is out of range: {shown} has {total} lines "
            f"(use start_line from 1 to {total})."
        )
    end = min(last, total)
    out = [f"{shown} lines {start_line}-{end} of {total}", *picked]
    if end < total:
        more = "" if end_line is None or end_line <= end else f" (at most {limit} lines per call)"
        out.append(f"... {total - end} more lines{more}; call read_file with start_line={end + 1}")
    return "\n".join(out)


def fs_tools(
    root: str | Path,
    *,
    max_read_lines: int = 200,
    max_matches: int = 50,
    max_entries: int = 200,
) -> list[BaseTool]:
    r"""Build the read-only ``list_files``, ``grep`` and ``read_file`` tools for one directory.

    Every path a model passes is checked by a :class:`Sandbox`; bad input raises
    :class:`SandboxError` or ``ToolException``, whose message tells the model what to fix.

    Args:
        root: directory the tools may see; it must exist.
        max_read_lines: most lines ``read_file`` returns per call.
        max_matches: most lines ``grep`` returns before summarising the rest.
        max_entries: most files ``list_files`` returns before summarising the rest.

    Returns:
        The tools, in the order list_files, grep, read_file.

    Raises:
        ToolSetupError: ``root`` is not an existing directory, or a limit is below 1 (also a
            ``ValueError``).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.py").write_text("x = 1\n")
        >>> list_files, grep, read_file = fs_tools(folder)
        >>> grep.invoke({"pattern": "x ="})
        'a.py:1: x = 1'
    """
    for name, value in [
        ("max_read_lines", max_read_lines),
        ("max_matches", max_matches),
        ("max_entries", max_entries),
    ]:
        if value < 1:
            raise ToolSetupError(f"{name} must be at least 1, got {value}; pass {name}=1 or more")
    box = Sandbox(Path(root))

    def list_files(path: str = ".", pattern: str = "*") -> str:
        return _list_files(box, max_entries, path, pattern)

    def grep(pattern: str, path: str = ".", glob: str = "*.py") -> str:
        return _grep(box, max_matches, pattern, path, glob)

    def read_file(path: str, start_line: int = 1, end_line: int | None = None) -> str:
        return _read_file(box, max_read_lines, path, start_line, end_line)

    return [
        StructuredTool.from_function(
            list_files,
            name="list_files",
            description="List files in a folder and its subfolders, relative to the root.",
            args_schema=_ListFilesArgs,
        ),
        StructuredTool.from_function(
            grep,
            name="grep",
            description="Search inside files for text or a regex. Returns 'path:LINE: text' lines.",
            args_schema=_GrepArgs,
        ),
        StructuredTool.from_function(
            read_file,
            name="read_file",
            description="Read a text file. Returns numbered lines; use start_line to read further.",
            args_schema=_ReadFileArgs,
        ),
    ]
