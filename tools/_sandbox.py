"""The sandbox every file tool path is checked against: relative, not hidden, inside the root."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_core.tools import ToolException

__all__ = ["Sandbox", "SandboxError", "ToolSetupError", "PATH_RULE"]

PATH_RULE = (
    "paths are relative to the sandbox root; '..' and absolute paths are not allowed "
    "(use e.g. 'src/app.py', or '.' for the root)"
)


class ToolSetupError(ValueError):
    """The tools were built with an invalid argument: a missing root, a limit below 1.

    Raised to the code that builds the tools, never to the model; the message says what to pass
    instead. ``tools/`` is a leaf that imports nothing from the engine, so this is not a
    ``tierflow.errors.TierflowError``; it is a ``ValueError``, as these errors were before.
    """


class SandboxError(ToolException):
    """A tool path was rejected because it is malformed or leaves the sandbox.

    Attributes:
        path: the path as the caller gave it.
        root: the sandbox root it was checked against.
    """

    def __init__(self, problem: str, *, path: str, root: Path) -> None:
        self.path = path
        self.root = root
        # The absolute root is kept out of the message so the model is not tempted to use it.
        super().__init__(f"{problem}: {path!r}. Fix: {PATH_RULE}.")


@dataclass(frozen=True)
class Sandbox:
    """A directory that tool paths must stay inside, even through symlinks.

    Attributes:
        root: the sandbox directory, stored as its fully resolved real path.

    Example:
        >>> import tempfile
        >>> box = Sandbox(Path(tempfile.mkdtemp()))
        >>> box.resolve(".") == box.root
        True
    """

    root: Path

    def __post_init__(self) -> None:
        real = Path(os.path.realpath(Path(self.root).expanduser()))
        if not real.is_dir():
            problem = "does not exist" if not real.exists() else "is not a directory"
            raise ToolSetupError(
                f"sandbox root {str(self.root)!r} {problem}; pass an existing directory"
            )
        object.__setattr__(self, "root", real)

    def contains(self, real: Path) -> bool:
        """Return whether an already resolved real path lies inside the root."""
        return real == self.root or real.is_relative_to(self.root)

    def resolve(self, rel: str) -> Path:
        """Turn a root-relative path into a real path inside the sandbox.

        Args:
            rel: path relative to the root; ``""`` and ``"."`` mean the root itself.

        Returns:
            The real path with every symlink resolved; it need not exist.

        Raises:
            SandboxError: ``rel`` is absolute, contains ``..`` or NUL, or resolves outside the root.
        """
        if "\x00" in rel:
            raise SandboxError("path contains a NUL character", path=rel, root=self.root)
        text = rel.strip()
        if text.startswith(("/", "\\")) or Path(text).is_absolute():
            raise SandboxError("absolute paths are not allowed", path=rel, root=self.root)
        parts = re.split(r"[/\\]", text)
        if ".." in parts:
            raise SandboxError("'..' is not allowed in paths", path=rel, root=self.root)
        if any(p.startswith(".") and p != "." for p in parts):
            # .env, .git/config, .ssh: secrets live in hidden files; listings skip them too.
            raise SandboxError(
                "hidden files and folders are not readable", path=rel, root=self.root
            )
        if len(text) > 4096 or len(parts) > 256:
            raise SandboxError("path is too long", path=rel[:80] + "...", root=self.root)
        try:
            real = Path(os.path.realpath(self.root / (text or ".")))
        except (OSError, ValueError) as exc:
            raise SandboxError(f"path cannot be resolved ({type(exc).__name__})", path=rel[:80],
                               root=self.root) from None  # fmt: skip
        if not self.contains(real):
            raise SandboxError(
                "path leads outside the sandbox via a symlink", path=rel, root=self.root
            )
        return real

    def walk_files(self, start: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
        """Yield ``(display path, real path)`` for regular files below a resolved directory.

        Hidden entries and ``__pycache__`` are skipped. File symlinks are yielded only when they
        resolve inside the root; symlinked directories are never descended into (as with
        ``os.walk`` and ripgrep), which rules out escapes, cycles and duplicate listings.
        """
        try:
            entries = sorted(os.scandir(start), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            shown = f"{prefix}{entry.name}"
            if entry.is_symlink():
                real = Path(os.path.realpath(entry.path))
                if self.contains(real) and real.is_file():
                    yield shown, real
            elif entry.is_dir(follow_symlinks=False):
                yield from self.walk_files(Path(entry.path), f"{shown}/")
            elif entry.is_file(follow_symlinks=False):
                yield shown, Path(entry.path)
