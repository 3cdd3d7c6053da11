"""Evals at Batch API prices, against the stand-in's loopback Batch endpoints (tierflow.faults).

A 20-item triage eval (three dependent requests per item, two of them in parallel) runs once
live and once with ``batch``: the same report, every cost exactly half. A run that stops while
its batch is in progress resumes it (one batch created in all); failed and expired lines are
sent again, and a line that keeps failing fails its request, reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

from tierflow.batch import Batcher, BatchError, BatchSettings, batch_price
from tierflow.config import load_config
from tierflow.errors import InputError
from tierflow.evals import SuiteResult, compare, run
from tierflow.evals.scripted import DEFAULT_ACCURACY, models_for, oracle_responder
from tierflow.faults import StandIn, profile_toml

pytestmark = pytest.mark.usefixtures("isolated_env")

FAST = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=2)
ITEMS = 20


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[StandIn]:
    """A stand-in answering as the triage oracle (imperfect tiers), as profile ``si`` in cwd."""
    monkeypatch.setenv("STAND_IN_KEY", "sk-stand-in")
    faults = getattr(request, "param", {})
    suite = faults.pop("suite", "triage")
    responder = oracle_responder(suite, DEFAULT_ACCURACY) if suite else None  # None: "ok"
    with StandIn(responder=responder, **faults) as server:
        Path("tierflow.toml").write_text(profile_toml("si", server.base_url, timeout_s=5.0))
        yield server


def settings(folder: Path, log: list[str] | None = None, **kw: Any) -> BatchSettings:
    return BatchSettings(state_dir=folder, poll_s=0.01, max_poll_s=0.05,
                         log=(log.append if log is not None else None), **kw)  # fmt: skip


def figures(result: SuiteResult) -> list[tuple[Any, ...]]:
    """What the report shows of each example, cost aside."""
    return [(e.id, e.quality, e.scores, e.prediction, e.escalations, e.subagent_tiers, e.error,
             e.input_tokens, e.output_tokens) for e in result.examples]  # fmt: skip


def test_a_20_item_eval_with_batch_is_the_same_report_at_half_the_cost(
    stand_in: StandIn, tmp_path: Path
) -> None:
    policies = ["tiered", "cascade"]
    live = compare("triage", policies, limit=ITEMS, profile="si", retry=FAST)
    sent = stand_in.requests
    lines: list[str] = []
    batched = compare("triage", policies, limit=ITEMS, profile="si", retry=FAST,
                      batch=settings(tmp_path / "b", lines))  # fmt: skip

    assert stand_in.requests == sent  # not one request went live
    assert stand_in.batch.created >= 2  # one batch per model and round
    for a, b in zip(live, batched, strict=True):
        assert (b.policy, b.n) == (a.policy, ITEMS)
        assert figures(b) == figures(a)
        assert (b.quality, b.escalation_rate, b.errors) == (a.quality, a.escalation_rate, 0)
        for x, y in zip(a.examples, b.examples, strict=True):
            assert y.cost_usd == pytest.approx(x.cost_usd / 2, abs=1e-12)
        assert b.cost_usd == pytest.approx(a.cost_usd / 2, abs=1e-10) and a.cost_usd > 0
        assert {r["service_tier"] for e in b.examples for r in e.usage} == {"batch"}
    assert 0.5 < live[0].quality < 1.0  # imperfect tiers: the figures mean something
    # Each request went in one line, once; one the two policies both make is one line.
    assert set(stand_in.batch.lines.values()) == {1} and len(stand_in.batch.lines) < sent
    assert "costs at Batch API prices" in lines[-1]


def test_batch_price_is_half_or_the_flex_price() -> None:
    tier = load_config("openai", require_keys=False).tier("flagship")
    assert batch_price(tier).model_dump() == {"input": 1.25, "cached_input": 0.125, "output": 7.5}
    flex = tier.model_copy(update={"flex_price": tier.price.model_copy(update={"input": 1.0})})
    assert batch_price(flex).input == 1.0


@pytest.mark.parametrize("stand_in", [{"suite": "routing", "batch_polls": 10**6}], indirect=True)
def test_a_run_that_stopped_resumes_its_batch_and_creates_no_second(
    stand_in: StandIn, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    live = run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST)
    with pytest.raises(BatchError, match="run the same command again"):  # the "crash"
        run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST,
            batch=settings(folder, timeout_s=0.2))  # fmt: skip
    assert stand_in.batch.created == 1
    [batch] = stand_in.batch.batches.values()
    batch["_polls"] = 1  # time passes at the provider; the batch ends on a later poll
    again = run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST,
                batch=settings(folder))  # fmt: skip
    assert stand_in.batch.created == 1  # polled again, never created again
    assert figures(again) == figures(live)
    assert again.cost_usd == pytest.approx(live.cost_usd / 2, abs=1e-10)
    # A third run finds every answer in the state folder: no batch at all.
    third = run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST,
                batch=settings(folder))  # fmt: skip
    assert stand_in.batch.created == 1 and figures(third) == figures(live)


@pytest.mark.parametrize("stand_in", [{"batch_fail_lines": 2}], indirect=True)
def test_failed_lines_are_sent_again_in_the_next_batch(stand_in: StandIn, tmp_path: Path) -> None:
    live = run("triage", "tiered", limit=ITEMS, profile="si", retry=FAST)
    batched = run("triage", "tiered", limit=ITEMS, profile="si", retry=FAST,
                  batch=settings(tmp_path / "b", line_retries=1))  # fmt: skip
    assert figures(batched) == figures(live)
    assert sorted(stand_in.batch.lines.values()).count(2) == 2  # the two failed lines, twice


@pytest.mark.parametrize("stand_in", [{"batch_fail_lines": 1}], indirect=True)
def test_a_line_that_keeps_failing_fails_its_request_and_is_reported(
    stand_in: StandIn, tmp_path: Path
) -> None:
    lines: list[str] = []
    batched = run("triage", "tiered", limit=ITEMS, profile="si", retry=FAST,
                  batch=settings(tmp_path / "b", lines, line_retries=0))  # fmt: skip
    failed = [ln for ln in lines if ln.startswith("batch line ")]
    assert len(failed) == 1 and "stand-in line failure" in failed[0]
    assert "1 failed lines" in lines[-1]
    errors = [r["error"] for e in batched.examples for r in e.usage if r["error"]]
    assert errors and all("batch line" in err for err in errors)  # in the item's records
    assert batched.n == ITEMS  # the item is in the report, not dropped


@pytest.mark.parametrize("stand_in", [{"suite": "routing", "batch_expire": 1}], indirect=True)
def test_an_expired_batch_s_unfinished_lines_go_in_a_new_batch(
    stand_in: StandIn, tmp_path: Path
) -> None:
    live = run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST)
    batched = run("routing", "tiered", limit=ITEMS, profile="si", retry=FAST,
                  batch=settings(tmp_path / "b"))  # fmt: skip
    statuses = [b["status"] for b in stand_in.batch.batches.values()]
    assert statuses[0] == "expired" and statuses[-1] == "completed"
    assert figures(batched) == figures(live)


def test_with_a_response_cache_batch_answers_are_cached_at_batch_prices(
    stand_in: StandIn, tmp_path: Path
) -> None:
    cache = str(tmp_path / "responses.sqlite")
    live = run("triage", "tiered", limit=5, profile="si", retry=FAST)
    first = run("triage", "tiered", limit=5, profile="si", retry=FAST, response_cache=cache,
                batch=settings(tmp_path / "b"))  # fmt: skip
    assert not any(r["cached_response"] for e in first.examples for r in e.usage)
    created = stand_in.batch.created
    # Another state folder, the same cache: every request is answered from the cache.
    again = run("triage", "tiered", limit=5, profile="si", retry=FAST, response_cache=cache,
                batch=settings(tmp_path / "other"))  # fmt: skip
    assert stand_in.batch.created == created
    assert all(r["cached_response"] for e in again.examples for r in e.usage)
    assert figures(again) == figures(first) == figures(live)
    assert again.cost_usd == pytest.approx(live.cost_usd / 2, abs=1e-10)


def test_batch_refuses_test_doubles() -> None:
    with pytest.raises(InputError, match="test doubles"):
        run("routing", limit=1, profile="openai", models=models_for("routing"), batch=True)


def test_a_file_naming_two_models_fails_validation(stand_in: StandIn, tmp_path: Path) -> None:
    import asyncio

    from tierflow._batch_api import BatchAPI

    async def go() -> Any:
        api = BatchAPI(stand_in.base_url, "sk-stand-in")
        lines = [{"custom_id": f"c{m}", "body": {"model": m, "messages": []}} for m in "ab"]
        batch_id = await api.create(await api.upload(lines), {})
        batch = await api.wait(batch_id, poll_s=0.01, max_poll_s=0.01, timeout_s=5,
                               log=lambda _l: None)  # fmt: skip
        await api.close()
        return batch

    batch = asyncio.run(go())
    assert batch.status == "failed" and "two models" in batch.errors.data[0].message
    # Batcher groups lines per model, so its own files never mix them.
    config = load_config("si")
    assert len({Batcher(config, tmp_path / "s", settings(tmp_path))._api(g).base_url
                for g in Batcher(config, tmp_path / "s", settings(tmp_path))._groups}) == 1  # fmt: skip


@pytest.mark.parametrize("stand_in", [{"suite": "routing", "batch_polls": 0}], indirect=True)
def test_eval_command_batch_flag_batches_the_suite(
    stand_in: StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from tierflow.evals.cli import eval_command

    eval_command("routing", policy=["tiered"], limit=5, profile="si", no_cache=True, batch=True,
                 plot=Path("f.png"))  # fmt: skip
    out = capsys.readouterr().out
    assert "costs at Batch API prices" in out and "batch_000001" in out
    assert stand_in.batch.created == 1 and stand_in.requests == 0
    assert (Path(".tierflow") / "batch" / "routing" / "state.json").is_file()


@pytest.mark.parametrize("stand_in", [{"suite": None, "batch_polls": 0}], indirect=True)
def test_a_run_whose_held_request_timed_out_is_run_again(stand_in: StandIn, tmp_path: Path) -> None:
    import asyncio

    from langchain_core.messages import AIMessage

    batcher = Batcher(load_config("si"), tmp_path / "s", settings(tmp_path, settle_s=0.5))
    nano = batcher.models()["nano"]

    async def job(_round: int) -> str:
        try:
            async with asyncio.timeout(0.05):  # shorter than the round's cut: a live timeout
                reply = await nano.ainvoke("hello")
        except TimeoutError:
            return "timed out"  # what a run would do next (escalate) must not count
        assert isinstance(reply, AIMessage)
        return str(reply.content)

    done = asyncio.run(batcher.run_jobs({"only": job}))
    assert done == {"only": "ok"} and batcher.rounds == 2 and stand_in.batch.created == 1
