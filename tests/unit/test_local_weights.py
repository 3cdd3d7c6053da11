"""ensure_model: assembly from part packages, verification, rebuild of bad files, clear errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from tierflow.local import weights
from tierflow.local.weights import LocalModel, LocalServerError, ensure_model

KEY = "fake-model-q4"
CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"tail"]
CONTENT = b"".join(CHUNKS)


def _make_parts(root: Path, chunks: list[bytes]) -> tuple[str, ...]:
    """Write one importable package per chunk, each with get_part_path() like the real ones."""
    prefix = f"fakepart_{uuid.uuid4().hex[:8]}_"
    names = []
    for i, chunk in enumerate(chunks, start=1):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n"
        )
        names.append(pkg.name)
    return tuple(names)


def _register(monkeypatch: pytest.MonkeyPatch, parts: tuple[str, ...], content: bytes) -> None:
    model = LocalModel(
        key=KEY,
        parts=parts,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        upstream="test",
        license="Apache-2.0",
        ram_mb=1,
    )
    monkeypatch.setitem(weights.MODELS, KEY, model)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Registers KEY with three installed fake part packages; returns the cache dir."""
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    _register(monkeypatch, _make_parts(site, CHUNKS), CONTENT)
    return tmp_path / "cache"


def _touch_later(path: Path) -> None:
    # Rewrites within one clock tick can keep the old mtime; real edits move it.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_assembles_parts_in_order_and_stamps_the_digest(fake_model: Path) -> None:
    path = ensure_model(KEY, fake_model)

    assert path == fake_model / "models" / f"{KEY}.gguf"
    assert path.read_bytes() == CONTENT
    assert path.with_name(path.name + ".verified").exists()
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".part"] == []


def test_verified_file_is_served_without_rehashing(
    fake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_model(KEY, fake_model)

    def no_hashing(path: Path) -> str:
        raise AssertionError("hashed again although the stamp is current")

    monkeypatch.setattr(weights, "_sha256_file", no_hashing)
    assert ensure_model(KEY, fake_model).read_bytes() == CONTENT


def test_same_size_corrupt_file_is_rebuilt(fake_model: Path) -> None:
    path = ensure_model(KEY, fake_model)
    path.write_bytes(b"X" * len(CONTENT))
    _touch_later(path)

    assert ensure_model(KEY, fake_model).read_bytes() == CONTENT


def test_partial_file_is_rebuilt(fake_model: Path) -> None:
    path = fake_model / "models" / f"{KEY}.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(CONTENT[: len(CONTENT) // 2])

    assert ensure_model(KEY, fake_model).read_bytes() == CONTENT


def test_truncated_file_with_old_stamp_is_rebuilt(fake_model: Path) -> None:
    path = ensure_model(KEY, fake_model)
    with path.open("r+b") as f:
        f.truncate(10)

    assert ensure_model(KEY, fake_model).read_bytes() == CONTENT


def test_missing_part_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    parts = _make_parts(site, CHUNKS[:2]) + ("fakepart_not_installed_3",)
    _register(monkeypatch, parts, CONTENT)

    with pytest.raises(LocalServerError) as info:
        ensure_model(KEY, tmp_path / "cache")

    assert "fakepart_not_installed_3" in str(info.value)
    assert info.value.fix == "pip install 'tierflow[local]'"
    assert not (tmp_path / "cache" / "models" / f"{KEY}.gguf").exists()


def test_parts_that_do_not_match_the_digest_are_never_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    _register(monkeypatch, _make_parts(site, [CHUNKS[0], CHUNKS[2], CHUNKS[1]]), CONTENT)

    with pytest.raises(LocalServerError, match="force-reinstall"):
        ensure_model(KEY, tmp_path / "cache")

    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == [f"{KEY}.gguf.lock"]


def test_unknown_key_lists_the_known_models() -> None:
    with pytest.raises(LocalServerError, match="qwen2.5-coder-0.5b-instruct-q4_k_m"):
        ensure_model("no-such-model")
