"""The same interrupt -> new process -> resume scenario on a real PostgreSQL server.

The server is the session's ``postgres_url`` fixture (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_resume_process import check_resume_across_processes

pytestmark = pytest.mark.integration


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
