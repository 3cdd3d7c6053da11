"""Shared fixtures: isolated settings, fast retries, scripted tiers, a small source tree."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

from tests.skips import unavailable
from tierflow.breaker import BREAKERS
from tierflow.runtime import RunContext
from tierflow.testing import (
    CHECKPOINTER_KINDS,
    ScriptedChatModel,
    postgres_bin,
    postgres_server,
    scratch_checkpointer,
)

LADDER = ("nano", "mini", "flagship")

RETRY_SOURCE = '''"""Retry helpers."""

MAX_ATTEMPTS = 3


class RetryPolicy:
    """How often to retry."""

    def __init__(self, attempts=MAX_ATTEMPTS):
        self.attempts = attempts
'''

BUDGET_SOURCE = """DEFAULT_BUDGET_USD = 0.05


def spend(amount):
    return amount
"""


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """Each test starts with every endpoint's circuit breaker closed (they are per process)."""
    BREAKERS.reset()
    yield
    BREAKERS.reset()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the test session (checkpoint tables set up)."""
    if postgres_bin() is None:
        unavailable("PostgreSQL server not installed: apt-get install -y postgresql", "these tests")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=CHECKPOINTER_KINDS)
async def saver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh checkpointer: a test that takes it runs on memory, SQLite and PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    async with scratch_checkpointer(request.param, tmp_path, url) as checkpointer:
        yield checkpointer


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TIERFLOW_* variables, no OpenAI key, and a working directory without tierflow.toml."""
    for name in list(os.environ):
        if name.startswith("TIERFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Three attempts, no backoff: retry tests stay instant."""
    return RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=3)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedChatModel]]:
    """Factory of scripted models; each must use up its script unless built with ``check=False``."""
    made: list[ScriptedChatModel] = []

    def make(
        label: str, script: list[Any] | None = None, *, delay_s: float = 0.0, check: bool = True
    ) -> ScriptedChatModel:
        model = ScriptedChatModel(script=list(script or []), label=label, delay_s=delay_s)
        if check:
            made.append(model)
        return model

    yield make
    for model in made:
        model.assert_complete()


@pytest.fixture
def make_ctx(fast_retry: RetryPolicy) -> Callable[..., RunContext]:
    """RunContext with a scripted model on every tier (tiers not given refuse any request).

    A tier without a double would get a real client; an empty script keeps every run offline.
    """

    def make(
        models: Mapping[str, ScriptedChatModel],
        *,
        profile: str = "local",
        tiers: tuple[str, ...] = LADDER,
        **kwargs: Any,
    ) -> RunContext:
        full = {t: ScriptedChatModel(script=[], label=f"unused-{t}") for t in tiers}
        full.update(models)
        kwargs.setdefault("shortcuts", False)  # scripted subagents do the work themselves
        return RunContext(profile=profile, models=full, retry=fast_retry, **kwargs)

    return make


@pytest.fixture
def thread() -> Callable[[], dict[str, Any]]:
    """A fresh thread config per call (budget ledgers are per thread id, process-wide)."""
    return lambda: {"configurable": {"thread_id": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def qa_root(tmp_path: Path) -> Path:
    """A tiny source tree for the codebase-QA graph and its verifiers."""
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "retry.py").write_text(RETRY_SOURCE)
    (root / "pkg" / "budget.py").write_text(BUDGET_SOURCE)
    return root


@pytest.fixture
def tree_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], str]:
    """Writes a source tree (``{path: text}``) under tmp_path; its code index is cached there."""
    from tests.answer_checks import write_tree

    monkeypatch.setenv("TIERFLOW_MODEL_CACHE", str(tmp_path / "cache"))
    return lambda files: write_tree(tmp_path / "src", files)
