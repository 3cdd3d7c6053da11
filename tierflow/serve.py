"""`tierflow serve`: the project's graphs over the LangGraph API, on one machine or many replicas.

- ``tierflow serve --dev`` runs ``langgraph dev`` (one process, state in memory) as before.
- ``tierflow serve`` runs `Aegra <https://github.com/ibbybuilds/aegra>`_ (Apache-2.0), an
  open-source server for the LangGraph platform API, on PostgreSQL (threads, runs,
  checkpoints) and Redis (the job queue and stream broker). Every replica serves the API and
  runs jobs from the shared queue, so a run created through one replica may execute on
  another, and a replica that dies has its runs picked up by the others (at-least-once: a
  subagent's finished phases replay from the checkpoint, so no recorded request is paid twice).
  The budget ledger of every run lives in the same database (:mod:`tierflow.ledger_pg`), so
  replicas share one budget.

Aegra needs Python >= 3.12; tierflow's main environment may be 3.11 (the llama.cpp wheel),
so the server gets its own virtual environment (``[server] env_dir``), made on first use with
Aegra and this project installed into it. Settings live in ``tierflow.toml``::

    [server]
    database_url = "postgresql://postgres@127.0.0.1:5432/tierflow"
    redis_url = "redis://127.0.0.1:6379/0"
    port = 2024          # replica i listens on port + i
    replicas = 2
    jobs_per_replica = 10

and each can be overridden by ``TIERFLOW_SERVER__<NAME>`` (e.g. ``TIERFLOW_SERVER__REPLICAS=3``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from glob import glob
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierflow._toml import read_toml
from tierflow.config import ConfigError, Settings
from tierflow.errors import TierflowError

__all__ = [
    "AEGRA_PACKAGES", "ServerConfig", "load_server_config", "Replica", "replicas", "server_env",
]  # fmt: skip

# Pinned: the API surface and the lease/recovery settings below were checked against these.
AEGRA_PACKAGES = ("aegra-api==0.11.0", "aegra-cli==0.11.0")
MIN_PYTHON = (3, 12)
READY_TIMEOUT_S = 120.0


class ServerConfig(BaseModel):
    """The ``[server]`` table of tierflow.toml (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=2024, ge=1, le=65535)
    replicas: int = Field(default=1, ge=1, le=64)
    jobs_per_replica: int = Field(default=10, ge=1, le=1000)
    python: str | None = None  # an interpreter >= 3.12 for the server environment
    env_dir: Path = Path(".tierflow/server-venv")
    # Crash recovery: a replica that stops heartbeating loses its runs' leases after this long.
    lease_s: int = Field(default=15, ge=3)

    def require_stores(self) -> tuple[str, str]:
        """The database and Redis URLs, or a ConfigError saying where to set them."""
        for name in ("database_url", "redis_url"):
            if not getattr(self, name):
                example = {
                    "database_url": "postgresql://postgres@127.0.0.1:5432/postgres",
                    "redis_url": "redis://127.0.0.1:6379/0",
                }[name]
                raise ConfigError(
                    f"server.{name}",
                    "not set (tierflow serve runs Aegra on PostgreSQL and Redis)",
                    f'add {name} = "{example}" under [server] in tierflow.toml, or set '
                    f"TIERFLOW_SERVER__{name.upper()}; or use tierflow serve --dev",
                )
        assert self.database_url and self.redis_url
        return self.database_url, self.redis_url


def load_server_config(config_file: Path | str | None = None) -> ServerConfig:
    """``[server]`` from tierflow.toml, then ``TIERFLOW_SERVER__*`` variables over it."""
    path = Path(config_file or Settings().config or "tierflow.toml")
    section = dict(read_toml(path).get("server") or {}) if path.is_file() else {}
    for name in ServerConfig.model_fields:
        value = os.environ.get(f"TIERFLOW_SERVER__{name.upper()}")
        if value is not None:
            section[name] = value
    try:
        return ServerConfig.model_validate(section)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"server.{field}", err["msg"], "fix it under [server]") from exc


def _python_ok(candidate: str) -> bool:
    try:
        out = subprocess.run(
            [candidate, "-c", f"import sys; print(sys.version_info >= {MIN_PYTHON})"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def find_python(cfg: ServerConfig) -> str:
    """An interpreter >= 3.12: ``[server] python``, else python3.13/3.12 on PATH or in pyenv."""
    if cfg.python:
        if _python_ok(cfg.python):
            return cfg.python
        raise ConfigError(
            "server.python", f"{cfg.python} is not a Python >= 3.12", "point it at python3.12+"
        )
    candidates = [shutil.which(n) for n in ("python3.13", "python3.12")]
    candidates += sorted(glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    candidates += sorted(glob("/usr/local/bin/python3.1[2-9]")) + sorted(
        glob("/usr/bin/python3.1[2-9]")
    )
    for candidate in candidates:
        if candidate and _python_ok(candidate):
            return candidate
    raise ConfigError(
        "server.python",
        "Aegra needs Python >= 3.12 and none was found",
        "install one (apt-get install python3.12, or pyenv install 3.12) or set "
        'python = "/path/to/python3.12" under [server]',
    )


def _sources(registry: Path) -> list[str]:
    """What the server environment installs besides Aegra: tierflow and the project."""
    import tierflow

    out: list[str] = []
    here = Path(tierflow.__file__).resolve().parents[1]
    if (here / "pyproject.toml").is_file():  # a source checkout (editable install)
        out += ["-e", str(here)]
    else:
        from importlib.metadata import version

        out.append(f"tierflow=={version('tierflow')}")
    for dep in json.loads(registry.read_text()).get("dependencies") or []:
        path = (registry.parent / dep).resolve()
        if path.is_dir() and (path / "pyproject.toml").is_file() and path != here:
            out += ["-e", str(path)]
        elif not path.exists() and dep != ".":
            out.append(str(dep))  # a requirement such as "httpx>=0.27"
    return out


def server_env(cfg: ServerConfig, registry: Path, *, quiet: bool = True) -> Path:
    """The server environment's Python, made (or brought up to date) on first use."""
    env_dir = cfg.env_dir if cfg.env_dir.is_absolute() else registry.parent / cfg.env_dir
    python = env_dir / "bin" / "python"
    wanted = {"packages": list(AEGRA_PACKAGES), "sources": _sources(registry)}
    stamp = env_dir / "tierflow-server.json"
    if python.exists() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return python
    base = find_python(cfg)
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(env_dir)], check=True)
    pip = [str(python), "-m", "pip", "install", *(["-q"] if quiet else [])]
    try:
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *AEGRA_PACKAGES, *wanted["sources"]], check=True)
    except subprocess.CalledProcessError as exc:
        raise TierflowError(
            f"could not install the server environment in {env_dir} ({exc}); the package "
            "index must be reachable, or install aegra-api there yourself"
        ) from exc
    stamp.write_text(json.dumps(wanted))
    return python


class Replica:
    """One Aegra process (API plus job workers) on ``port``, in its own process group."""

    def __init__(
        self,
        python: Path,
        cfg: ServerConfig,
        registry: Path,
        port: int,
        log: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        database_url, redis_url = cfg.require_stores()
        self.url = f"http://{cfg.host}:{port}"
        self.log = log
        heartbeat = max(1, cfg.lease_s // 3)
        env = {
            **os.environ,
            **(extra_env or {}),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_BROKER_ENABLED": "true",
            "AEGRA_CONFIG": str(registry),
            "HOST": cfg.host,
            "PORT": str(port),
            "WORKER_COUNT": "1",
            "N_JOBS_PER_WORKER": str(cfg.jobs_per_replica),
            "LEASE_DURATION_SECONDS": str(cfg.lease_s),
            "HEARTBEAT_INTERVAL_SECONDS": str(heartbeat),
            "REAPER_INTERVAL_SECONDS": str(heartbeat),
            # One budget for the replicas together: every run's ledger is a row in the database.
            "TIERFLOW_LEDGER_URL": database_url,
        }
        cmd = [str(python), "-m", "uvicorn", "aegra_api.main:app", "--host", cfg.host,
               "--port", str(port), "--no-access-log"]  # fmt: skip
        out = log.open("ab") if log else subprocess.DEVNULL
        # uvicorn runs in this process (no `aegra serve` wrapper, whose child outlives it).
        self.proc = subprocess.Popen(
            cmd, cwd=registry.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if log:
            out.close()  # type: ignore[union-attr]

    @property
    def pid(self) -> int:
        """The replica's process id (and process group)."""
        return self.proc.pid

    def ready(self) -> bool:
        """True once the API answers ``/ready``."""
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait for ``/ready``; raise with the log's tail if the replica exits or hangs."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:] if self.log else ""
                self.stop()
                raise TierflowError(f"the server replica at {self.url} did not start:\n{tail}")
            time.sleep(0.25)

    def kill(self) -> None:
        """Stop the replica with SIGKILL, as a crash would (recovery tests and benchmarks)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Aegra drains its jobs), then SIGKILL after ``timeout_s``."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def replicas(
    cfg: ServerConfig, registry: Path, count: int, *, first_port: int | None = None,
    log_dir: Path | None = None, extra_env: Mapping[str, str] | None = None,
) -> Iterator[list[Replica]]:  # fmt: skip
    """``count`` ready replicas on consecutive ports; all stopped on exit."""
    python = server_env(cfg, registry)
    port = first_port or cfg.port
    started: list[Replica] = []
    try:
        for i in range(count):
            log = log_dir / f"replica-{port + i}.log" if log_dir else None
            replica = Replica(python, cfg, registry, port + i, log, extra_env)
            started.append(replica)
            # One at a time: the first applies the database migrations.
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


def serve_forever(running: list[Replica], out: Any = sys.stdout) -> int:
    """Wait until Ctrl-C or SIGTERM (see :func:`stop_on_sigterm`) or until a replica exits."""
    try:
        while True:
            dead = [r for r in running if r.proc.poll() is not None]
            if dead:
                print(f"replica {dead[0].url} exited ({dead[0].proc.returncode})", file=out)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def stop_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C: replicas started so far are stopped on the way out.

    Also while they are still starting (a replica in its own session outlives a killed parent).
    """

    def interrupt(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
