"""Cost arithmetic against hand-computed figures, usage records of a run, summaries, repricing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tierflow.config import Price, load_config
from tierflow.graphs.codebase_qa import build
from tierflow.pricing import cost_usd
from tierflow.testing import tool_reply
from tierflow.usage import UsageRecord, as_records, merge_usage, reprice, spent_usd, summarize

pytestmark = pytest.mark.usefixtures("isolated_env")

FLAGSHIP = Price(input=2.50, cached_input=0.25, output=15.00)
MINI = Price(input=0.75, cached_input=0.075, output=4.50)
NANO = Price(input=0.20, cached_input=0.02, output=1.25)


def rec(i: int, **fields: Any) -> UsageRecord:
    base = {"id": f"r{i}", "node": "n", "tier": "mini", "model": "m", "endpoint": "e"}
    return UsageRecord(**{**base, **fields})


@pytest.mark.parametrize(
    ("price", "inp", "cached", "out", "expected"),
    [
        (FLAGSHIP, 1000, 0, 200, 0.0055),  # 1000*2.5/1e6 + 200*15/1e6
        (FLAGSHIP, 1000, 400, 200, 0.0046),  # 600*2.5 + 400*0.25 + 200*15 = 4600 / 1e6
        (MINI, 10_000, 0, 2_000, 0.0165),  # 7500 + 9000
        (MINI, 3_000, 1_000, 200, 0.002475),  # 2000*0.75 + 1000*0.075 + 200*4.5
        (NANO, 1_000_000, 500_000, 100_000, 0.235),  # 0.1 + 0.01 + 0.125
        (NANO, 0, 0, 0, 0.0),
    ],
)
def test_cost_matches_hand_computed(
    price: Price, inp: int, cached: int, out: int, expected: float
) -> None:
    assert cost_usd(price, input_tokens=inp, cached_tokens=cached, output_tokens=out) == expected


def test_cached_tokens_are_clamped_to_the_prompt() -> None:
    # More cached than prompt tokens (a server glitch) bills the whole prompt as cached, no more.
    assert (
        cost_usd(FLAGSHIP, input_tokens=100, cached_tokens=500, output_tokens=0) == 100 * 0.25 / 1e6
    )
    assert cost_usd(FLAGSHIP, input_tokens=-5, cached_tokens=-5, output_tokens=-5) == 0.0


def test_merge_usage_appends_only_the_new_records() -> None:
    a, b, c = (rec(i, cost_usd=i / 10).model_dump() for i in (1, 2, 3))
    left = [a, b]

    merged = merge_usage(left, [c])

    assert [r["id"] for r in merged] == ["r1", "r2", "r3"]
    assert left == [a, b]  # the old value (held by a checkpoint) is not mutated
    assert merge_usage(None, None) == [] and merge_usage(left, []) == left
    assert spent_usd(merged) == pytest.approx(0.6)


def test_summary_totals_and_latency_percentiles() -> None:
    records = [
        rec(i, latency_s=float(i), input_tokens=10, output_tokens=1, cost_usd=0.001)
        for i in range(1, 11)
    ]
    records.append(rec(99, latency_s=500.0, error="TransientError: blip"))
    records.append(rec(100, tier="nano", latency_s=2.0, escalation_reason="schema_validation"))

    mini, nano, total = summarize(records, by="tier")

    assert (mini.key, nano.key, total.key) == ("mini", "nano", "TOTAL")
    assert (mini.requests, mini.errors, mini.input_tokens, mini.output_tokens) == (11, 1, 100, 10)
    assert mini.cost_usd == 0.01
    # failed attempts are left out of latency: 1..10 -> p50 5.5, p95 9.55 (inclusive method)
    assert mini.p50_latency_s == pytest.approx(5.5)
    assert mini.p95_latency_s == pytest.approx(9.55)
    assert (nano.p50_latency_s, nano.p95_latency_s, nano.escalations) == (2.0, 2.0, 1)
    assert total.requests == 12 and total.errors == 1 and total.escalations == 1


def test_summary_of_only_failed_requests_has_zero_latency() -> None:
    (row, total) = summarize([rec(1, error="boom", latency_s=3.0)], by="node")

    assert (row.key, row.p50_latency_s, row.p95_latency_s, row.errors) == ("n", 0.0, 0.0, 1)
    assert total.requests == 1


def test_reprice_uses_the_other_profile_and_keeps_unknown_tiers() -> None:
    openai = load_config("openai", require_keys=False)
    records = [
        rec(1, tier="flagship", input_tokens=1000, cached_tokens=400, output_tokens=200),
        rec(2, tier="nano", input_tokens=1_000_000, cached_tokens=500_000, output_tokens=100_000),
        rec(3, tier="custom", input_tokens=10, cost_usd=0.5),
    ]

    priced = reprice(records, openai)

    assert [r.cost_usd for r in priced] == [0.0046, 0.235, 0.5]
    assert [r.id for r in priced] == ["r1", "r2", "r3"]
    assert records[0].cost_usd == 0.0  # originals untouched


def d(delegate: list[dict[str, Any]], usage: tuple[int, ...], done: bool = False) -> Any:
    return tool_reply("decide", {"plan": "p", "delegate": delegate, "done": done}, usage=usage)


def act(native: bool, usage: tuple[int, ...], action: str, **args: Any) -> Any:
    """One subagent step: a direct tool call (native tiers) or a ``next_action`` (forced tiers)."""
    if native:
        return tool_reply(action, args.get("result", args), usage=usage)
    return tool_reply("next_action", {"step": {"action": action, **args}}, usage=usage)


def script_one_search(scripted: Any, native: bool) -> dict[str, Any]:
    """A full codebase-QA run: 3 flagship calls and 2 mini calls with fixed token counts."""
    flag = scripted(
        "flag",
        [
            d([{"subagent": "search", "task": {"query": "class RetryPolicy"}}], (1000, 200)),
            d([], (1500, 100, 500), done=True),
            tool_reply(
                "final_answer",
                {
                    "answer": "pkg/retry.py line 6",
                    "citations": [{"path": "pkg/retry.py", "line": 6}],
                },
                usage=(800, 300),
            ),
        ],
    )
    mini = scripted(
        "mini",
        [
            act(native, (2000, 100), "grep", pattern="class RetryPolicy"),
            act(
                native,
                (3000, 200, 1000),
                "finish",
                result={
                    "findings": [
                        {"path": "pkg/retry.py", "line": 6, "snippet": "class RetryPolicy:"}
                    ],
                    "summary": "defined in pkg/retry.py",
                },
            ),
        ],
    )
    return {"flagship": flag, "mini": mini}


# Hand-computed at the openai prices (USD per 1M tokens).
SUPERVISOR_1 = 0.0055  # 1000*2.5 + 200*15
MINI_GREP = 0.00195  # 2000*0.75 + 100*4.5
MINI_FINISH = 0.002475  # 2000*0.75 + 1000*0.075 + 200*4.5
SUPERVISOR_2 = 0.004125  # 1000*2.5 + 500*0.25 + 100*15
ANSWER = 0.0065  # 800*2.5 + 300*15


async def run_qa(
    models: dict[str, Any], profile: str, make_ctx: Any, thread: Any, root: Path
) -> dict[str, Any]:
    graph = build().compile(checkpointer=InMemorySaver())
    ctx = make_ctx(models, profile=profile)
    inp = {
        "request": "Where is RetryPolicy defined?",
        "env": {"root": str(root)},
        "budget_usd": 1.0,
    }
    return await graph.ainvoke(inp, thread(), context=ctx)


async def test_graph_records_cost_at_openai_prices(scripted, make_ctx, thread, qa_root) -> None:
    out = await run_qa(
        script_one_search(scripted, native=True), "openai", make_ctx, thread, qa_root
    )

    assert out["status"] == "answered"
    usage = out["usage"]
    assert all(isinstance(r, dict) for r in usage)
    got = sorted((r["node"], r["tier"], r["cost_usd"]) for r in usage)
    assert got == sorted(
        [
            ("supervisor", "flagship", SUPERVISOR_1),
            ("search", "mini", MINI_GREP),
            ("search", "mini", MINI_FINISH),
            ("supervisor", "flagship", SUPERVISOR_2),
            ("answer", "flagship", ANSWER),
        ]
    )
    first = next(r for r in usage if r["cost_usd"] == SUPERVISOR_1)
    assert (first["input_tokens"], first["output_tokens"], first["model"]) == (1000, 200, "flag")
    assert first["endpoint"] == "https://api.openai.com/v1"
    finish = next(r for r in usage if r["cost_usd"] == MINI_FINISH)
    assert (finish["cached_tokens"], finish["subagent"], finish["task_id"]) == (
        1000,
        "search",
        "t1.1-search",
    )
    assert spent_usd(usage) == pytest.approx(0.02055, abs=1e-12)


async def test_summaries_per_tier_and_node(scripted, make_ctx, thread, qa_root) -> None:
    out = await run_qa(
        script_one_search(scripted, native=True), "openai", make_ctx, thread, qa_root
    )

    by_tier = {s.key: s for s in summarize(out["usage"], by="tier")}
    by_node = {s.key: s for s in summarize(out["usage"], by="node")}

    assert list(by_tier) == ["flagship", "mini", "TOTAL"]
    flag, mini = by_tier["flagship"], by_tier["mini"]
    assert (flag.requests, flag.input_tokens, flag.cached_tokens, flag.output_tokens) == (
        3,
        3300,
        500,
        600,
    )
    assert flag.cost_usd == pytest.approx(SUPERVISOR_1 + SUPERVISOR_2 + ANSWER, abs=1e-12)
    assert (mini.requests, mini.input_tokens, mini.cached_tokens, mini.output_tokens) == (
        2,
        5000,
        1000,
        300,
    )
    assert mini.cost_usd == pytest.approx(MINI_GREP + MINI_FINISH, abs=1e-12)
    assert by_tier["TOTAL"].cost_usd == pytest.approx(0.02055, abs=1e-12)
    assert list(by_node) == ["answer", "search", "supervisor", "TOTAL"]
    assert by_node["supervisor"].cost_usd == pytest.approx(SUPERVISOR_1 + SUPERVISOR_2, abs=1e-12)
    assert by_node["answer"].requests == 1
    assert 0 <= flag.p50_latency_s <= flag.p95_latency_s


async def test_local_run_repriced_at_openai(scripted, make_ctx, thread, qa_root) -> None:
    out = await run_qa(
        script_one_search(scripted, native=False), "local", make_ctx, thread, qa_root
    )
    assert spent_usd(out["usage"]) == 0.0

    priced = reprice(out["usage"], load_config("openai", require_keys=False))

    assert sorted(r.cost_usd for r in priced) == sorted(
        [SUPERVISOR_1, MINI_GREP, MINI_FINISH, SUPERVISOR_2, ANSWER]
    )
    assert [r.id for r in priced] == [r.id for r in as_records(out["usage"])]


def test_a_server_s_cached_tokens_reach_the_record_show_the_run_view_and_langsmith(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The usage of an OpenAI-compatible answer (what the local server now reports), end to end.

    langchain-openai reads ``prompt_tokens_details.cached_tokens`` into
    ``input_token_details.cache_read``; the record, its cost, the per-tier table of
    ``tierflow show``, the run view and LangSmith's cost fields must all say the same.
    """
    import asyncio

    from langchain_core.messages import HumanMessage
    from rich.console import Console

    from tests.chat_stub import chat_server
    from tierflow.calling import CallSite, call_model
    from tierflow.report import usage_table
    from tierflow.runner import RunResult
    from tierflow.runtime import RunContext, engine_for
    from tierflow.runview import render_html

    usage = {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020,
             "prompt_tokens_details": {"cached_tokens": 600}}  # fmt: skip
    site = CallSite(node="unit", tier="nano")
    with chat_server(usage) as url:
        monkeypatch.setenv("TIERFLOW_TIERS__NANO__BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        engine = engine_for(RunContext(profile="openai"))
        out = asyncio.run(call_model(engine, site, {"run_id": "r1"}, [HumanMessage("hi")]))

    record = UsageRecord.model_validate(out.records[0])
    expected = cost_usd(NANO, input_tokens=1000, cached_tokens=600, output_tokens=20)
    assert (record.input_tokens, record.cached_tokens, record.output_tokens) == (1000, 600, 20)
    assert (record.cost_usd, record.billing) == (expected, "reported")
    usage: Any = out.message.usage_metadata
    assert usage["input_token_details"]["cache_read"] == 600
    assert usage["total_cost"] == expected
    assert usage["input_cost_details"]["cache_read"] == 600 * NANO.cached_input / 1e6
    console = Console(record=True, width=200)
    console.print(usage_table(out.records, "tier"))
    nano_row = next(line for line in console.export_text().splitlines() if "nano" in line)
    assert [cell.strip() for cell in nano_row.split("│")[4:7]] == ["1000", "600", "20"]
    cfg = load_config("openai", require_keys=False)
    page = render_html(RunResult("t1", "codebase_qa", {"usage": out.records}, []), cfg)
    assert "id='cached-tokens'>600<" in page
