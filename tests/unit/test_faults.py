"""Reliability harness: real clients against a fault-injecting stand-in OpenAI server.

Every run must finish (or wait) intact whatever the network does: transport faults (500, 429,
a reply past the timeout, a 200 that is not JSON, a dropped connection) are retried, so each
run ends exactly as the same run does without faults; malformed tool calls are repaired or
escalated, never a crash. Runs go through langchain-openai's ChatOpenAI over HTTP, the
engine's retry loop and the checkpointer, as in production.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import RetryPolicy

from tierflow.faults import TRANSPORT_FAULTS, StandIn, standin_context
from tierflow.graphs import codebase_qa
from tierflow.runtime import RunContext

QUESTIONS = [
    "Where is RetryPolicy defined?",
    "What is the value of DEFAULT_BUDGET_USD?",
    "What is the base class of RetryPolicy?",
    "Where is the function backoff defined, and what does it compute?",
]
RUNS = 12
ENDED = {"answered", "unverified", "failed", "stopped", "budget_exhausted"}


# A timeout well above a loaded machine's stalls. At 1 s the comparison failed once on a busy CI
# box (one run's final answer differed, with the same calls and tasks) and never here, even under
# load; the likely path is ordinary replies slowed past the timeout five times in a row, which
# opens the circuit breaker, so a task ends one tier up and the answer's prompt names that tier.
TIMEOUT_S, SLOW_S = 3.0, 3.3


def _context(tmp: Path, url: str) -> RunContext:
    retry = RetryPolicy(initial_interval=0.0, backoff_factor=1.0, jitter=False, max_attempts=7)
    return standin_context(tmp, "standin", url, retry, timeout_s=TIMEOUT_S, max_retries=6)


async def _outcomes(ctx: RunContext, root: Path) -> list[tuple[Any, ...]]:
    graph = codebase_qa.build().compile(checkpointer=InMemorySaver())
    out = []
    for i in range(RUNS):
        question = QUESTIONS[i % len(QUESTIONS)] + " " * (i // len(QUESTIONS))
        state = await graph.ainvoke(
            {"request": question, "env": {"root": str(root)}},
            {"configurable": {"thread_id": f"run-{i}"}},
            context=ctx,
        )
        assert state["status"] in ENDED, state
        ok = [r for r in state["usage"] if r["error"] is None]
        out.append((state["status"], state.get("answer"), len(ok), sorted(state["results"])))
    return out


def _run(tmp: Path, root: Path, monkeypatch: Any, **faults: Any) -> tuple[Any, StandIn]:
    monkeypatch.setenv("STAND_IN_KEY", "sk-stand-in")
    with StandIn(**faults) as server:
        outcomes = asyncio.run(_outcomes(_context(tmp, server.base_url), root))
    return outcomes, server


@pytest.fixture
def root(qa_root: Path) -> Path:
    (qa_root / "pkg" / "backoff.py").write_text(
        "def backoff(attempt, base=0.5):\n    return base * 2 ** attempt\n"
    )
    return qa_root


def test_transport_faults_change_no_run_s_outcome(root: Path, tmp_path: Path, monkeypatch) -> None:
    clean, quiet = _run(tmp_path, root, monkeypatch, rate=0.0)
    faulty, noisy = _run(tmp_path, root, monkeypatch, rate=0.2, seed=11, slow_s=SLOW_S)

    assert quiet.faults == {}
    assert set(noisy.faults) == set(TRANSPORT_FAULTS), noisy.faults  # every kind was injected
    assert sum(noisy.faults.values()) >= 0.1 * noisy.requests
    # Every fault was absorbed by a retry: same statuses, answers, successful calls and tasks.
    assert faulty == clean


def test_malformed_tool_calls_are_repaired_or_escalated_never_a_crash(
    root: Path, tmp_path: Path, monkeypatch
) -> None:
    outcomes, server = _run(
        tmp_path, root, monkeypatch, rate=0.3, kinds=("bad_args", *TRANSPORT_FAULTS), seed=5,
        slow_s=SLOW_S,
    )  # fmt: skip

    assert server.faults["bad_args"] > 0
    assert len(outcomes) == RUNS and all(o[0] in ENDED for o in outcomes)


def _post(base_url: str) -> int:
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_proxy_forwards_to_its_upstream_with_bounded_faults() -> None:
    with (
        StandIn() as upstream,
        StandIn(rate=1.0, kinds=("500",), upstream=upstream.base_url, max_faults=2) as proxy,
    ):
        assert [_post(proxy.base_url) for _ in range(4)] == [500, 500, 200, 200]
        assert proxy.faults == {"500": 2}
        assert upstream.requests == 2  # only the requests without a fault went through


def test_the_proxy_is_loopback_only_and_checks_its_faults() -> None:
    with pytest.raises(ValueError, match="not a loopback URL"):
        StandIn(upstream="https://api.openai.com/v1")
    with pytest.raises(ValueError, match="faults must be among"):
        StandIn(kinds=("explode",))
