"""LocalServers: tiers whose base URLs name one port share one server process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tierflow.config import Price, TierConfig, TierSpec
from tierflow.local import _procs
from tierflow.local import servers as srv
from tierflow.local.servers import LocalServers, ServerRecord
from tierflow.local.weights import LocalServerError

FREE = Price(input=0, cached_input=0, output=0)


def _tier(name: str, port: int, weights: str = "qwen2.5-coder-0.5b-instruct-q4_k_m") -> TierSpec:
    return TierSpec(
        name=name, model=weights.removesuffix("-q4_k_m"), base_url=f"http://127.0.0.1:{port}/v1",
        price=FREE, local_model=weights,
    )  # fmt: skip


class FakeProcesses:
    """Stands in for spawning and signalling llama servers."""

    def __init__(self) -> None:
        self.spawned: list[str] = []
        self.stopped: list[int] = []
        self.alive: set[int] = set()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def spawn(_self: LocalServers, spec: TierSpec, _path: Path) -> ServerRecord:
            pid = 1000 + len(self.spawned)
            self.spawned.append(spec.name)
            self.alive.add(pid)
            return ServerRecord(spec.name, pid, _procs.port_of(spec), spec.model, "now", "log")

        def stop(_self: LocalServers, pid: int, _port: int) -> None:
            self.stopped.append(pid)
            self.alive.discard(pid)

        monkeypatch.setattr(LocalServers, "_spawn", spawn)
        monkeypatch.setattr(LocalServers, "_stop", stop)
        monkeypatch.setattr(LocalServers, "_alive", lambda _s, pid, _port: pid in self.alive)
        monkeypatch.setattr(LocalServers, "_preflight", lambda _s, todo: None)
        monkeypatch.setattr(LocalServers, "_wait", lambda _s, started, wait_s: None)
        monkeypatch.setattr(srv, "ensure_model", lambda key, cache_dir=None: Path(key))
        monkeypatch.setattr(_procs, "served_models", lambda port, timeout_s=1.0: None)


def _servers(tmp_path: Path, *tiers: TierSpec) -> LocalServers:
    cfg = TierConfig(
        profile="t", ladder=tuple(t.name for t in tiers), tiers={t.name: t for t in tiers},
        data_dir=tmp_path,
    )  # fmt: skip
    return LocalServers(cfg)


def test_tiers_on_one_port_share_one_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProcesses()
    fake.install(monkeypatch)
    servers = _servers(
        tmp_path, _tier("nano", 8733), _tier("mini", 8733),
        _tier("flagship", 8731, "qwen2.5-coder-1.5b-instruct-q4_k_m"),
    )  # fmt: skip

    started = servers.up()

    assert sorted(fake.spawned) == ["flagship", "nano"]  # two processes for three tiers
    pids = {r.tier: r.pid for r in started}
    assert pids["mini"] == pids["nano"] != pids["flagship"]
    assert {r.tier for r in servers.records().values()} == {"nano", "mini", "flagship"}
    assert servers.up() == []  # all running: nothing started

    assert sorted(servers.down(["mini", "nano"])) == ["mini", "nano"]
    assert fake.stopped == [pids["nano"]]  # stopped once
    assert set(servers.records()) == {"flagship"}


def test_a_tier_joins_the_live_server_on_its_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProcesses()
    fake.install(monkeypatch)
    servers = _servers(tmp_path, _tier("nano", 8733), _tier("mini", 8733))
    (nano,) = servers.up(["nano"])
    assert servers.up(["mini"]) == []  # nothing started: mini is served by nano's server
    assert fake.spawned == ["nano"] and servers.records()["mini"].pid == nano.pid


def test_tiers_on_one_port_must_share_their_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeProcesses().install(monkeypatch)
    servers = _servers(
        tmp_path, _tier("nano", 8733), _tier("mini", 8733, "qwen2.5-coder-1.5b-instruct-q4_k_m")
    )
    with pytest.raises(LocalServerError, match="share port 8733 but not a model"):
        servers.up()


def test_the_local_profile_serves_mini_and_nano_from_one_port() -> None:
    from tierflow.config import load_config

    cfg: Any = load_config("local")
    assert cfg.tiers["mini"].base_url == cfg.tiers["nano"].base_url
    assert cfg.tiers["mini"].local_model == cfg.tiers["nano"].local_model
