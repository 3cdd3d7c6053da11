"""Evals on the real local profile: one triage ticket, tiered policy, llama.cpp servers."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from rich.console import Console

from tests.skips import unavailable

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_servers() -> Iterator[None]:
    from tierflow.config import load_config
    from tierflow.local.weights import INSTALL_HINT, missing_parts

    cfg = load_config("local")
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable(f"llama-cpp-python is not installed: {INSTALL_HINT}", "local-model tests")
    missing = sorted(
        {p for t in cfg.tiers.values() if t.local_model for p in missing_parts(t.local_model)}
    )
    if missing:
        unavailable(
            f"weight packages {', '.join(missing)} are not installed: {INSTALL_HINT}",
            "local-model tests",
        )
    from tierflow.local import LocalServers

    servers = LocalServers(cfg)
    started = servers.up()
    try:
        yield
    finally:
        # Stop exactly what this fixture started; servers that were already up stay up.
        servers.down([r.tier for r in started])


def test_triage_one_ticket_tiered_on_local_models(
    local_servers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierflow.evals import run
    from tierflow.evals.report import render_table

    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    result = run("triage", "tiered", limit=1, profile="local")
    ex = result.examples[0]
    assert result.n == 1 and ex.error is None, ex.error
    assert 0.0 <= result.quality <= 1.0
    assert ex.input_tokens > 0 and ex.output_tokens > 0 and ex.cost_usd > 0  # priced at openai
    assert ex.latency_s > 0 and result.p50_latency_s > 0
    console = Console(record=True, width=160)
    console.print(render_table([result]))
    text = console.export_text()
    assert "tiered" in text and f"{result.cost_usd:.6f}" in text


def test_mmlu_cascade_on_local_models_then_from_the_response_cache(
    local_servers: None, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from tierflow.evals import run

    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    cache = str(tmp_path / "responses.sqlite")
    first = run("mmlu", "cascade", limit=2, profile="local", response_cache=cache)
    assert first.errors == 0 and first.n == 2
    assert all(e.prediction in ("A", "B", "C", "D") for e in first.examples)
    records = [r for e in first.examples for r in e.usage]
    assert records[0]["tier"] == "nano" and not any(r["cached_response"] for r in records)
    # Each cheap answer was checked by a second sample (node verify) before it was kept or sent up.
    assert sum(r["node"] == "verify" for r in records) >= 2
    again = run("mmlu", "cascade", limit=2, profile="local", response_cache=cache)
    assert [e.prediction for e in again.examples] == [e.prediction for e in first.examples]
    assert all(r["cached_response"] for e in again.examples for r in e.usage)
    assert again.cost_usd == first.cost_usd
