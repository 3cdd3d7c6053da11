"""Build the code index's per-file entries, re-parsing only files whose content hash changed.

The cache is one JSON file per tree, ``<cache_dir>/<sha256(root)[:20]>.json``::

    {"schema": 1, "root": "/abs/root",
     "files": {"graph/state.py": {"sha256": "...", "names": ["graph.state", "graph.state", "graph"],
                                  "entry": {...parse_file output...}}},
     "skipped": {"broken.py": {"sha256": "...", "names": [...], "reason": "syntax error at line 3: ..."}}}

``names`` are the file's import name, path-based name and package. A file whose sha256 and names
match its cached record is not parsed again (a syntax error is remembered too); a file that is
gone drops out; a cache file that cannot be read, or has another schema or root, is rebuilt.
Bump ``SCHEMA`` whenever :func:`~tierflow.tools._index_parse.parse_file`'s output changes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierflow.tools._index_model import Skipped
from tierflow.tools._index_parse import parse_file
from tierflow.tools._sandbox import Sandbox

__all__ = ["BuildStats", "build_entries", "default_index_dir"]

SCHEMA = 2  # 2: registry entries
MAX_FILE_BYTES = 1_000_000  # the same cap grep applies: bigger .py files are generated data


@dataclass(frozen=True)
class BuildStats:
    """What one build did.

    Attributes:
        files: ``.py`` files indexed.
        parsed: files parsed in this build (new or changed); 0 on an unchanged tree.
        reused: files taken from the cache unchanged.
        removed: cached files that are gone from the tree.
        seconds: wall time of the build.
        cache_path: the cache file, or None when the index is not cached.
        note: why the cache was rebuilt or not written, if it was; else ``""``.
    """

    files: int
    parsed: int
    reused: int
    removed: int
    seconds: float
    cache_path: Path | None
    note: str = ""


def default_index_dir() -> Path:
    """``$TIERFLOW_MODEL_CACHE/index``, else ``~/.cache/tierflow/index``.

    The same folder as ``tierflow.local.weights.default_cache_dir`` (a test keeps them equal),
    spelled out here because ``tools`` is a leaf that imports nothing else from tierflow.
    """
    env = os.environ.get("TIERFLOW_MODEL_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "tierflow") / "index"


def _cache_file(cache_dir: Path, root: Path) -> Path:
    return cache_dir / f"{hashlib.sha256(str(root).encode()).hexdigest()[:20]}.json"


def _load(path: Path, root: Path) -> tuple[dict[str, Any], str]:
    """The cached records, or empty ones and the reason they could not be used."""
    empty: dict[str, Any] = {"files": {}, "skipped": {}}
    if not path.exists():
        return empty, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ok = (
            data.get("schema") == SCHEMA
            and data.get("root") == str(root)
            and isinstance(data["files"], dict)
            and isinstance(data["skipped"], dict)
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return empty, f"rebuilt: cache file unreadable ({type(exc).__name__})"
    return (data, "") if ok else (empty, "rebuilt: cache file from another schema or root")


def _save(path: Path, root: Path, files: dict[str, Any], skipped: dict[str, Any]) -> str:
    data = {"schema": SCHEMA, "root": str(root), "files": files, "skipped": skipped}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except OSError as exc:
        return f"cache not written ({type(exc).__name__}: {exc.strerror or exc})"
    return ""


def _module_names(rel: str, packages: set[str], root_name: str) -> tuple[str, str, str]:
    """``(import name, path-based name, package for relative imports)`` of one file."""
    parts = rel[: -len(".py")].split("/")
    is_init = parts[-1] == "__init__"
    dirs = parts[:-1]
    # The import name starts at the topmost folder of the chain of packages holding the file.
    top = len(dirs)
    while top > 0 and "/".join(dirs[:top]) in packages:
        top -= 1
    prefix = [root_name] if root_name and top == 0 else []
    chain = prefix + parts[top:]
    path_parts = ([root_name] if root_name else []) + parts
    if is_init:
        chain, path_parts = chain[:-1], path_parts[:-1]
    path_name = ".".join(path_parts) or "__init__"
    package = path_name if is_init else ".".join(path_parts[:-1])
    return ".".join(chain) or path_name, path_name, package


def _parse_one(raw: bytes, rel: str, names: tuple[str, str, str]) -> dict[str, Any]:
    """The cache record of one file: its parsed entry, or the reason it was skipped."""
    record: dict[str, Any] = {"sha256": hashlib.sha256(raw).hexdigest(), "names": list(names)}
    if len(raw) > MAX_FILE_BYTES:
        return record | {"reason": f"larger than {MAX_FILE_BYTES // 1_000_000} MB"}
    try:
        text = importlib.util.decode_source(raw)
        return record | {"entry": parse_file(text, rel, names[0], names[2])}
    except SyntaxError as exc:
        return record | {"reason": f"syntax error at line {exc.lineno}: {exc.msg}"}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return record | {"reason": f"not parseable as Python ({type(exc).__name__})"}


def _sources(box: Sandbox) -> tuple[list[tuple[str, Path]], str]:
    """The tree's ``.py`` files (hidden ones never) and the root's package name, if it is one."""
    files = [(rel, real) for rel, real in box.walk_files(box.root) if rel.endswith(".py")]
    root_name = box.root.name if (box.root / "__init__.py").is_file() else ""
    return files, root_name if root_name.isidentifier() else ""


def build_entries(
    root: Path, cache_dir: Path | None
) -> tuple[dict[str, Any], list[Skipped], BuildStats]:
    """Index every ``.py`` file under ``root``, reusing cached entries whose content is unchanged.

    Args:
        root: the tree; paths are confined to it by :class:`~tierflow.tools.Sandbox`.
        cache_dir: folder for the cache file; None for :func:`default_index_dir`.

    Returns:
        ``{relative path: entry}``, the skipped files, and what the build did.
    """
    started = time.perf_counter()
    box = Sandbox(root)
    files, root_name = _sources(box)
    packages = {rel.rsplit("/", 1)[0] for rel, _ in files if rel.endswith("/__init__.py")}
    path = _cache_file(cache_dir or default_index_dir(), box.root)
    cached, note = _load(path, box.root)
    old_records = {**cached["skipped"], **cached["files"]}
    records: dict[str, Any] = {}
    parsed = 0
    for rel, real in files:
        names = _module_names(rel, packages, root_name)
        try:
            raw = real.read_bytes()
        except OSError as exc:
            records[rel] = {"sha256": "", "reason": f"unreadable ({type(exc).__name__})"}
            continue
        old = old_records.get(rel)
        if (
            old
            and old.get("sha256") == hashlib.sha256(raw).hexdigest()
            and old.get("names") == list(names)
        ):
            records[rel] = old
            continue
        records[rel] = _parse_one(raw, rel, names)
        parsed += 1
    removed = len(old_records.keys() - records.keys())
    kept = {rel: rec for rel, rec in records.items() if "entry" in rec}
    skips = {rel: rec for rel, rec in records.items() if "entry" not in rec}
    if parsed or removed or note or not path.exists():
        note = _save(path, box.root, kept, skips) or note
    skipped = [Skipped(rel, rec["reason"]) for rel, rec in sorted(skips.items())]
    stats = BuildStats(
        len(kept),
        parsed,
        len(records) - parsed,
        removed,
        time.perf_counter() - started,
        path if path.exists() else None,
        note,
    )
    return {rel: rec["entry"] for rel, rec in kept.items()}, skipped, stats
