"""Run untrusted Python in a fresh, resource-limited subprocess (for scoring generated code)."""

from __future__ import annotations

import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxResult", "run_python"]

_TAIL_CHARS = 4000
_FILE_LIMIT_BYTES = 1024 * 1024
_OPEN_FILES = 64


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run did.

    Attributes:
        ok: exited with status 0 before the timeout.
        returncode: the exit status; negative is the signal that ended it (``-9`` after a timeout).
        stdout_tail: the last characters it wrote to stdout.
        stderr_tail: the last characters it wrote to stderr (a traceback ends up here).
        timed_out: ran past its wall-clock limit and was killed with its process group.
    """

    ok: bool
    returncode: int
    stdout_tail: str
    stderr_tail: str
    timed_out: bool

    def reason(self) -> str:
        """One line saying why the run failed, for a verifier's feedback ('' when ok).

        Example:
            >>> run_python("assert 1 == 2").reason()
            'AssertionError'
        """
        if self.ok:
            return ""
        if self.timed_out:
            return "timed out"
        lines = [line for line in self.stderr_tail.splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


def _limits(timeout_s: float, memory_mb: int) -> None:
    """Set the child's resource limits; runs in the child between fork and exec."""
    memory = memory_mb * 1024 * 1024
    cpu = math.ceil(timeout_s) + 1
    for kind, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_NOFILE, _OPEN_FILES),
        (resource.RLIMIT_FSIZE, _FILE_LIMIT_BYTES),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(kind, (value, value))


def _tail(path: Path) -> str:
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - _TAIL_CHARS * 4))
        return stream.read().decode("utf-8", "replace")[-_TAIL_CHARS:]


def _kill_group(pid: int) -> None:
    # The child leads its own session, so this also ends anything it spawned.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(code: str, *, timeout_s: float = 10, memory_mb: int = 512) -> SandboxResult:
    r"""Run ``code`` with ``python -I`` in an empty temporary folder and report how it went.

    The child gets a minimal environment (no proxies, no API keys), stdin at end-of-file, its own
    process group (killed whole on timeout or exit), and limits on address space
    (``memory_mb``), CPU time (``timeout_s`` + 1 s), open files, file size (1 MB, which also
    bounds what it prints) and no core dumps. This contains mistakes and casual misuse of a
    model's code; it is not a security boundary against a determined attacker (the network and
    the rest of the file system stay reachable).

    Args:
        code: Python source to run as the main module.
        timeout_s: wall-clock limit in seconds.
        memory_mb: address-space limit in MiB.

    Returns:
        A :class:`SandboxResult`.

    Example:
        >>> run_python("print(6 * 7)").stdout_tail
        '42\n'
        >>> run_python("while True: pass", timeout_s=0.5).timed_out
        True
    """
    with tempfile.TemporaryDirectory(prefix="tierflow-sandbox-") as root:
        work, out = Path(root, "work"), Path(root, "out")
        work.mkdir()
        out.mkdir()
        script = out / "main.py"
        script.write_text(code, encoding="utf-8")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(work),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        with (out / "stdout").open("wb") as stdout, (out / "stderr").open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(script)],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=lambda: _limits(timeout_s, memory_mb),
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)
                proc.wait()
        return SandboxResult(
            ok=proc.returncode == 0 and not timed_out,
            returncode=proc.returncode,
            stdout_tail=_tail(out / "stdout"),
            stderr_tail=_tail(out / "stderr"),
            timed_out=timed_out,
        )
