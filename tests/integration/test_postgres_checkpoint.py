"""The same interrupt -> new process -> resume scenario on a real PostgreSQL server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_resume_process import check_resume_across_processes

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries missing: apt-get install -y postgresql")
        pytest.skip("PostgreSQL server not installed (apt-get install -y postgresql)")
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="tierflow-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    run = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *run,
            str(bindir / "initdb"),
            "-D",
            f"{base}/data",
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run,
            str(bindir / "pg_ctl"),
            "-D",
            f"{base}/data",
            "-l",
            f"{base}/log",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base}",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run, str(bindir / "pg_ctl"), "-D", f"{base}/data", "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_budget_interrupt_resumes_from_postgres_in_a_new_process(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    check_resume_across_processes(tmp_path, {"TIERFLOW_CHECKPOINT_URL": postgres_url})
    assert not (tmp_path / "checkpoints.sqlite").exists()
    # The thread registry is in the same database, not in a file beside it.
    assert not list(tmp_path.rglob("threads.json"))
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT info FROM tierflow_threads").fetchone()
    assert row is not None and '"graph"' in row[0]
