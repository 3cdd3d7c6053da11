"""Local llama.cpp servers, one per tier: start them, watch them, stop exactly what was started.

Example:
    >>> from tierflow.config import load_config
    >>> from tierflow.local.servers import LocalServers
    >>> servers = LocalServers(load_config("local"))  # doctest: +SKIP
    >>> servers.up(["nano"])  # doctest: +SKIP
    >>> [s.state for s in servers.status()]  # doctest: +SKIP
    ['healthy', 'stopped', 'stopped']
    >>> servers.down()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tierflow.config import TierConfig, TierSpec
from tierflow.local import _procs
from tierflow.local.weights import INSTALL_HINT, MODELS, LocalServerError, ensure_model

__all__ = [
    "ServerOptions",
    "ServerRecord",
    "TierStatus",
    "LocalServers",
    "ensure_running",
]

State = Literal["healthy", "running", "dead", "stopped", "external"]


@dataclass(frozen=True)
class ServerOptions:
    """How every llama.cpp server is launched and stopped.

    Attributes:
        n_ctx: context window in tokens.
        n_threads: threads for generation and for prompt processing.
        chat_format: llama.cpp chat handler; ``chatml-function-calling`` supports forced
            tool choice, which the local profile relies on (``tool_mode = "forced"``).
        interrupt_requests: llama.cpp's default (True) silently ends a streamed answer as
            soon as another request waits; parallel subagents on one tier need False.
        stop_grace_s: how long ``down`` waits after SIGTERM before SIGKILL.
        prompt_cache_mb: the prompt cache of each server, in MB (0: none): evaluated prompts
            are kept so that tasks alternating on one server each find their own prefix
            again. Bounded for real by :class:`tierflow.local.llama_server.BoundedRAMCache`
            (llama-cpp-python's own cache does not count the logits it keeps; with it a
            server once reached 13.9 GB). Without a cache the server still reuses the
            longest common prefix with its previous request.
        n_batch: prompt tokens evaluated per step; a request whose client has gone stops
            at the next step (see :mod:`tierflow.local.llama_server`).
    """

    n_ctx: int = 4096
    n_threads: int = 2
    chat_format: str = "chatml-function-calling"
    interrupt_requests: bool = False
    stop_grace_s: float = 10.0
    prompt_cache_mb: int = 768
    n_batch: int = 256


@dataclass(frozen=True)
class ServerRecord:
    """A server this manager started, as kept in ``<data_dir>/local/servers.json``."""

    tier: str
    pid: int
    port: int
    model: str
    started_at: str
    log: str


@dataclass(frozen=True)
class TierStatus:
    """What runs behind one local tier right now.

    ``state`` is ``healthy`` (answers ``/v1/models``), ``running`` (alive, not answering yet),
    ``dead`` (recorded but gone), ``stopped`` (nothing recorded, port silent) or ``external``
    (a server tierflow did not start answers on the port).
    """

    tier: str
    state: State
    port: int
    model: str
    pid: int | None = None
    rss_mb: float | None = None


class LocalServers:
    """Start, inspect and stop one llama.cpp server per local tier of a profile.

    Args:
        cfg: the profile; tiers with ``local_model`` set are managed.
        options: launch options shared by all servers.
        cache_dir: where weights are assembled (see :func:`tierflow.local.ensure_model`).
    """

    def __init__(
        self,
        cfg: TierConfig,
        *,
        options: ServerOptions | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.options = options or ServerOptions()
        self.cache_dir = cache_dir
        self.state_dir = Path(cfg.data_dir) / "local"
        self.tiers = {n: s for n, s in cfg.tiers.items() if s.local_model}
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- records ---------------------------------------------------------------------------

    @property
    def record_file(self) -> Path:
        """``<data_dir>/local/servers.json``."""
        return self.state_dir / "servers.json"

    def records(self) -> dict[str, ServerRecord]:
        """The servers this manager (in any process) started and has not stopped."""
        try:
            raw = json.loads(self.record_file.read_text())
            return {t: ServerRecord(**r) for t, r in raw.get("tiers", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _write(self, records: dict[str, ServerRecord]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.record_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"tiers": {t: asdict(r) for t, r in records.items()}}, indent=2))
        os.replace(tmp, self.record_file)

    def _select(self, tiers: list[str] | None) -> dict[str, TierSpec]:
        if tiers is None:
            return dict(self.tiers)
        unknown = [t for t in tiers if t not in self.tiers]
        if unknown:
            raise LocalServerError(
                f"tier(s) {', '.join(unknown)} are not local tiers (with local_model) of profile "
                f"'{self.cfg.profile}'",
                f"choose among {', '.join(self.tiers) or '(none)'} or use the 'local' profile",
            )
        return {t: self.tiers[t] for t in tiers}

    # -- public API ------------------------------------------------------------------------

    def status(self) -> list[TierStatus]:
        """Report every local tier: state, pid, port, resident memory."""
        records, out = self.records(), []
        for name, spec in self.tiers.items():
            port, rec = _procs.port_of(spec), records.get(name)
            if rec and self._alive(rec.pid, rec.port):
                state: State = (
                    "healthy" if _procs.served_models(rec.port) is not None else "running"
                )
                out.append(
                    TierStatus(name, state, rec.port, rec.model, rec.pid, _procs.rss_mb(rec.pid))
                )
            elif rec:
                out.append(TierStatus(name, "dead", rec.port, rec.model, rec.pid))
            else:
                state = "external" if _procs.served_models(port) is not None else "stopped"
                out.append(TierStatus(name, state, port, spec.model))
        return out

    def up(self, tiers: list[str] | None = None, *, wait_s: float = 180.0) -> list[ServerRecord]:
        """Start a server for each selected tier that has none, and wait until all answer.

        Args:
            tiers: tier names; defaults to every local tier of the profile.
            wait_s: how long to wait for the new servers to answer ``/v1/models``.

        Returns:
            The servers started by this call (empty when all were already running).

        Raises:
            LocalServerError: llama_cpp or weights missing, a port taken by another process,
                too little memory, or a server that died or stayed silent during startup.
        """
        records = self.records()
        todo: dict[str, TierSpec] = {}
        for name, spec in self._select(tiers).items():
            rec = records.get(name)
            if rec and self._alive(rec.pid, rec.port):
                continue
            records.pop(name, None)
            # Another tier's live server on the same port (tiers that share a model share
            # one server, and its prompt cache): this tier is served by it too.
            host = next(
                (
                    r
                    for r in records.values()
                    if r.port == _procs.port_of(spec) and self._alive(r.pid, r.port)
                ),
                None,
            )
            if host is not None:
                records[name] = dataclasses.replace(host, tier=name)
                continue
            if spec.model in (_procs.served_models(_procs.port_of(spec)) or ()):
                continue  # served by someone else under the expected name: use it
            todo[name] = spec
        self._write(records)
        if not todo:
            return []
        spawn = self._by_port(todo)
        self._preflight(spawn)
        models = {n: ensure_model(s.local_model or "", self.cache_dir) for n, s in spawn.items()}
        started = {n: self._spawn(s, models[n]) for n, s in spawn.items()}
        self._write({**records, **started})
        self._wait(started, wait_s)
        for name, spec in todo.items():  # tiers served by a server started for another tier
            if name not in started:
                host = next(r for r in started.values() if r.port == _procs.port_of(spec))
                started[name] = dataclasses.replace(host, tier=name)
        self._write({**records, **started})
        return list(started.values())

    def _by_port(self, todo: dict[str, TierSpec]) -> dict[str, TierSpec]:
        """One tier per port to start a server for; tiers sharing a port must share a model."""
        first: dict[int, TierSpec] = {}
        for spec in todo.values():
            other = first.setdefault(_procs.port_of(spec), spec)
            if other.local_model != spec.local_model or other.model != spec.model:
                raise LocalServerError(
                    f"tiers '{other.name}' and '{spec.name}' share port "
                    f"{_procs.port_of(spec)} but not a model ({other.local_model} / "
                    f"{spec.local_model})",
                    "give one of them another port in its base_url, or the same model",
                )
        return {s.name: s for s in first.values()}

    def down(self, tiers: list[str] | None = None) -> list[str]:
        """Stop the recorded servers (only those still running as recorded) and forget them.

        Returns:
            The tiers whose server was stopped.
        """
        records = self.records()
        names = list(records) if tiers is None else [t for t in self._select(tiers) if t in records]
        stopped, stopped_pids = [], set()
        for name in names:
            rec = records.pop(name)
            if rec.pid in stopped_pids:  # one server for several tiers
                stopped.append(name)
            elif self._alive(rec.pid, rec.port):
                self._stop(rec.pid, rec.port)
                stopped.append(name)
                stopped_pids.add(rec.pid)
        self._write(records)
        return stopped

    # -- internals -------------------------------------------------------------------------

    def _preflight(self, todo: dict[str, TierSpec]) -> None:
        if importlib.util.find_spec("llama_cpp") is None or not importlib.util.find_spec("uvicorn"):
            raise LocalServerError("llama-cpp-python[server] is not installed", INSTALL_HINT)
        for name, spec in todo.items():
            port = _procs.port_of(spec)
            if not _procs.port_free(port):
                raise LocalServerError(
                    f"port {port} (tier '{name}') is in use by another process",
                    f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or move the tier: "
                    f"export TIERFLOW_TIERS__{name.upper()}__BASE_URL=http://127.0.0.1:<port>/v1",
                )
        need = sum(
            MODELS[s.local_model].ram_mb + self.options.prompt_cache_mb
            for s in todo.values()
            if s.local_model in MODELS
        )
        avail = _procs.mem_available_mb()
        if avail is not None and need > avail:
            raise LocalServerError(
                f"starting {', '.join(todo)} needs about {need} MB of memory but only "
                f"{avail:.0f} MB is available",
                "free memory, or start fewer tiers (tierflow local up --tier nano)",
            )

    def _spawn(self, spec: TierSpec, model_path: Path) -> ServerRecord:
        port, opts = _procs.port_of(spec), self.options
        cmd = [
            sys.executable, "-m", _procs.SERVER_MODULE, "--model", str(model_path),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(opts.n_ctx),
            "--n_threads", str(opts.n_threads), "--n_threads_batch", str(opts.n_threads),
            "--n_batch", str(opts.n_batch),
            "--model_alias", spec.model, "--chat_format", opts.chat_format,
            "--interrupt_requests", str(opts.interrupt_requests),
        ]  # fmt: skip
        if opts.prompt_cache_mb > 0:
            cmd += ["--cache", "True", "--cache_type", "ram",
                    "--cache_size", str(opts.prompt_cache_mb << 20)]  # fmt: skip
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir / f"{spec.name}.log").resolve()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        with log.open("a") as f:
            f.write(f"--- {started_at} {' '.join(cmd)}\n")
            f.flush()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        self._children[proc.pid] = proc
        return ServerRecord(spec.name, proc.pid, port, spec.model, started_at, str(log))

    def _wait(self, started: dict[str, ServerRecord], wait_s: float) -> None:
        """Wait for every new server; on any failure stop all of them (``up`` is all or nothing)."""
        pending, deadline = dict(started), time.monotonic() + wait_s
        while pending:
            for name, rec in list(pending.items()):
                if not self._alive(rec.pid, rec.port):
                    self._fail(started, rec, "exited during startup")
                if _procs.served_models(rec.port) is not None:
                    del pending[name]
            if pending and time.monotonic() > deadline:
                rec = next(iter(pending.values()))
                self._fail(started, rec, f"did not answer within {wait_s:.0f} s")
            time.sleep(0.25)

    def _fail(self, started: dict[str, ServerRecord], rec: ServerRecord, what: str) -> None:
        self.down(list(started))
        raise LocalServerError(
            f"llama server for tier '{rec.tier}' (port {rec.port}) {what}; last log lines of "
            f"{rec.log}:\n{_procs.tail(Path(rec.log))}",
            "read the log above; for a timeout pass a larger --wait-s",
        )

    def _alive(self, pid: int, port: int) -> bool:
        child = self._children.get(pid)
        if child is not None:  # our own child: its cmdline is not llama's until it has exec'd
            return child.poll() is None
        return _procs.is_server(pid, port)

    def _stop(self, pid: int, port: int) -> None:
        for sig, grace in ((signal.SIGTERM, self.options.stop_grace_s), (signal.SIGKILL, 5.0)):
            if not self._alive(pid, port):
                return
            os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self._alive(pid, port):
                time.sleep(0.1)


def ensure_running(
    cfg: TierConfig,
    *,
    options: ServerOptions | None = None,
    cache_dir: Path | None = None,
    wait_s: float = 180.0,
) -> str:
    """Start the local servers of ``cfg`` that are not running (used by ``tierflow run``).

    Returns:
        A one-line message saying what was started, or ``""`` when the profile has no
        local tiers.

    Raises:
        LocalServerError: as :meth:`LocalServers.up`.
    """
    servers = LocalServers(cfg, options=options, cache_dir=cache_dir)
    if not servers.tiers:
        return ""
    t0 = time.monotonic()
    started = servers.up(wait_s=wait_s)
    others = [t for t in servers.tiers if t not in {r.tier for r in started}]
    if not started:
        return f"local servers already running: {', '.join(others)}"
    done = ", ".join(f"{r.tier} (port {r.port}, pid {r.pid})" for r in started)
    msg = f"started local servers in {time.monotonic() - t0:.1f} s: {done}"
    return msg + (f"; already running: {', '.join(others)}" if others else "")
