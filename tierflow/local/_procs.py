"""What runs on this machine: loopback ports, ``/v1/models`` answers and ``/proc`` entries."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import urlparse

from tierflow.config import TierSpec
from tierflow.local.weights import LocalServerError

__all__ = [
    "SERVER_MODULE",
    "port_of",
    "served_models",
    "port_free",
    "mem_available_mb",
    "is_server",
    "rss_mb",
    "tail",
]

# llama-cpp-python's server with a bounded prompt cache and abandoned-request stops.
SERVER_MODULE = "tierflow.local.llama_server"


def port_of(spec: TierSpec) -> int:
    """The loopback port a local tier's server listens on (from its ``base_url``)."""
    url = urlparse(spec.base_url)
    if not spec.is_local or url.port is None:
        raise LocalServerError(
            f"tier '{spec.name}' has local_model set but base_url {spec.base_url} is not a "
            "loopback URL with a port",
            f"use e.g. TIERFLOW_TIERS__{spec.name.upper()}__BASE_URL=http://127.0.0.1:8733/v1",
        )
    return url.port


def served_models(port: int, timeout_s: float = 1.0) -> list[str] | None:
    """Model ids listed by ``GET /v1/models`` on loopback, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=timeout_s) as r:
            return [m.get("id", "") for m in json.load(r).get("data", [])]
    except (OSError, ValueError, AttributeError):
        return None


def port_free(port: int) -> bool:
    """True when nothing listens on loopback ``port`` (it can be bound)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def mem_available_mb() -> float | None:
    """MemAvailable from ``/proc/meminfo`` in MB, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def is_server(pid: int, port: int) -> bool:
    """True when ``pid`` is still a live llama server listening on ``port``."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
    ports = {args[i + 1] for i, a in enumerate(args[:-1]) if a == "--port"}
    launched = SERVER_MODULE in args or "llama_cpp.server" in args  # (older tierflow)
    return not zombie and launched and ports == {str(port)}


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or ``(no log)``."""
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()
    except OSError:
        return "(no log)"
