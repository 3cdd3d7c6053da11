"""Circuit breakers: a dead endpoint is skipped by every later call, then probed once."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import RetryPolicy

from tierflow.breaker import BREAKERS, Breakers
from tierflow.calling import CallSite, call_model
from tierflow.faults import StandIn
from tierflow.runtime import RunContext, engine_for

pytestmark = pytest.mark.usefixtures("isolated_env")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_lets_one_probe_through() -> None:
    clock = Clock()
    b = Breakers(threshold=3, cooldown_s=10.0, clock=clock)
    key = ("http://127.0.0.1:1/v1", "m")
    assert [b.failure(key), b.failure(key)] == [False, False]
    b.success(key)  # a success in between: the count starts again
    assert [b.failure(key), b.failure(key), b.failure(key)] == [False, False, True]
    assert (b.allow(key), b.state(key)) == (False, "open")
    clock.now += 10.0
    assert b.state(key) == "half-open"
    assert [b.allow(key), b.allow(key)] == [True, False]  # one probe, not two
    assert b.failure(key) is True  # the probe failed: open for another cooldown
    assert b.allow(key) is False
    clock.now += 10.0
    assert b.allow(key) is True
    b.success(key)
    assert (b.state(key), b.allow(key), b.allow(key)) == ("closed", True, True)


def test_threshold_zero_never_opens() -> None:
    b = Breakers(threshold=1)
    key = ("u", "m")
    assert b.failure(key, threshold=0) is False
    assert b.allow(key)


TOML = """
[profiles.breaker]
ladder = ["nano"]
[profiles.breaker.tiers.nano]
model = "dead-model"
base_url = "{dead}"
api_key_env = "STAND_IN_KEY"
price = {{ input = 1.0, cached_input = 0.1, output = 4.0 }}
timeout_s = 2.0
max_retries = 5
breaker_failures = 2
breaker_cooldown_s = {cooldown}
fallbacks = [{{ base_url = "{alive}", model = "alive-model" }}]
"""


def _call(ctx: RunContext) -> list[tuple[str, str | None]]:
    site = CallSite(node="unit", tier="nano")
    out = asyncio.run(
        call_model(
            engine_for(ctx),
            site,
            {"run_id": uuid.uuid4().hex},
            [HumanMessage("hi")],
            retry=ctx.retry,
        )  # fmt: skip
    )
    assert out.message is not None
    return [(r["model"], r["error"] and r["error"].split(":")[0]) for r in out.records]


def test_a_failing_endpoint_is_skipped_by_later_calls_then_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_KEY", "sk-stand-in")
    with StandIn(rate=1.0, kinds=("500",)) as dead, StandIn() as alive:
        toml = tmp_path / "tierflow.toml"
        toml.write_text(TOML.format(dead=dead.base_url, alive=alive.base_url, cooldown=0.5))
        retry = RetryPolicy(initial_interval=0.0, backoff_factor=1.0, jitter=False)
        ctx = RunContext(profile="breaker", config_file=str(toml), retry=retry)

        first = _call(ctx)
        # Two failures open the breaker: the rest of the attempts go to the fallback at once.
        assert first == [("dead-model", "OpenAIAPIError")] * 2 + [("alive-model", None)]
        assert dead.requests == 2
        assert BREAKERS.state((dead.base_url, "dead-model")) == "open"

        second = _call(ctx)  # another call (another run) skips the dead endpoint
        assert second == [("alive-model", None)]
        assert dead.requests == 2

        time.sleep(0.6)  # past the cooldown: exactly one probe, which fails and re-opens
        third = _call(ctx)
        assert third == [("dead-model", "OpenAIAPIError"), ("alive-model", None)]
        assert dead.requests == 3
        assert BREAKERS.state((dead.base_url, "dead-model")) == "open"
