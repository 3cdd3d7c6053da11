"""Fixtures that start real local servers for the integration tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.skips import unavailable
from tierflow.config import Price, TierConfig, TierSpec
from tierflow.local import LocalServers
from tierflow.local.weights import INSTALL_HINT, missing_parts
from tierflow.testing import free_port

NANO_WEIGHTS = "qwen2.5-coder-0.5b-instruct-q4_k_m"
NANO_ALIAS = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="session")
def llama_nano(nano_server: tuple[str, Path]) -> str:
    """The base_url of :func:`nano_server`."""
    return nano_server[0]


@pytest.fixture(scope="session")
def nano_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One llama.cpp server with Qwen2.5-Coder-0.5B on a free port: (base_url, its log)."""
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable(f"llama-cpp-python is not installed: {INSTALL_HINT}", "local-model tests")
    if missing := missing_parts(NANO_WEIGHTS):
        unavailable(
            f"weight packages {', '.join(missing)} are not installed: {INSTALL_HINT}",
            "local-model tests",
        )
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    free = Price(input=0, cached_input=0, output=0)
    nano = TierSpec(
        name="nano", model=NANO_ALIAS, base_url=base_url, price=free, local_model=NANO_WEIGHTS
    )
    cfg = TierConfig(
        profile="integration",
        ladder=("nano",),
        tiers={"nano": nano},
        data_dir=tmp_path_factory.mktemp("tierflow"),
    )
    servers = LocalServers(cfg)
    servers.up(wait_s=180)
    try:
        yield base_url, Path(servers.records()["nano"].log)
    finally:
        servers.down()
