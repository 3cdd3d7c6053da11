"""call_model: transient-only retries, usage per attempt, escalation on failure, the budget gate."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from pydantic import BaseModel

from tierflow.budget import (
    MIN_OUTPUT_TOKENS,
    Ledger,
    RunIdentityError,
    end_run,
    ledger_for,
    plan_call,
)
from tierflow.calling import CallSite, call_model
from tierflow.config import load_config
from tierflow.errors import ModelCallError
from tierflow.graphs.codebase_qa import build
from tierflow.nodes.subagent import Subagent, build_subagent, subagent_input
from tierflow.runtime import engine_for
from tierflow.testing import TransientError, tool_reply
from tierflow.usage import UsageRecord, spent_usd

pytestmark = pytest.mark.usefixtures("isolated_env")

URL = "https://api.openai.com/v1/chat/completions"
SITE = CallSite(node="unit", tier="nano", subagent="sub", task_id="t9", escalation_reason="error")


def api_error(status: int) -> openai.APIStatusError:
    response = httpx.Response(status, request=httpx.Request("POST", URL))
    cls = {
        400: openai.BadRequestError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
    }[status]
    return cls(f"status {status}", response=response, body=None)


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", URL))


async def call(ctx: Any, **kwargs: Any) -> Any:
    return await call_model(
        engine_for(ctx),
        SITE,
        {"run_id": uuid.uuid4().hex},
        [HumanMessage("hi")],
        retry=ctx.retry,
        **kwargs,
    )


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [TransientError("blip"), connection_error(), api_error(429), api_error(500)],
    ids=["transient", "connection", "rate-limit", "server-5xx"],
)
async def test_transient_error_is_retried_and_recorded(error, scripted, make_ctx) -> None:
    nano = scripted("nano", [error, tool_reply("x", {}, usage=(100, 10))])

    out = await call(make_ctx({"nano": nano}))

    assert out.message is not None and out.message.tool_calls[0]["name"] == "x"
    assert len(nano.requests) == 2
    # Records are plain dicts in state; each holds every UsageRecord field and round-trips.
    for r in out.records:
        assert UsageRecord.model_validate(r).model_dump() == r
    first, second = (UsageRecord.model_validate(r) for r in out.records)
    assert first.error is not None and first.error.startswith(type(error).__name__)
    assert (first.input_tokens, first.cost_usd) == (0, 0.0)
    assert second.error is None and (second.input_tokens, second.output_tokens) == (100, 10)
    for r in (first, second):
        assert (r.node, r.tier, r.subagent, r.task_id, r.escalation_reason) == (
            "unit",
            "nano",
            "sub",
            "t9",
            "error",
        )
        assert (r.model, r.endpoint) == ("nano", "http://127.0.0.1:8733/v1")
    assert first.id != second.id


@pytest.mark.parametrize(
    "error", [ValueError("bad schema"), api_error(400)], ids=["value-error", "bad-request-400"]
)
async def test_non_transient_error_is_not_retried(error, scripted, make_ctx) -> None:
    nano = scripted("nano", [error, tool_reply("never", {})], check=False)

    with pytest.raises(ModelCallError) as info:
        await call(make_ctx({"nano": nano}))

    assert len(nano.requests) == 1
    assert info.value.cause is error
    assert (info.value.tier, info.value.model) == ("nano", "nano")
    assert f"tier 'nano' (nano) failed: {type(error).__name__}" in str(info.value)
    assert len(info.value.records) == 1 and info.value.records[0]["error"]


async def test_persistent_transient_error_gives_up_after_max_attempts(scripted, make_ctx) -> None:
    nano = scripted("nano", [TransientError("down")] * 3)

    with pytest.raises(ModelCallError, match="TransientError: down") as info:
        await call(make_ctx({"nano": nano}))

    assert len(nano.requests) == 3
    assert [r["error"] for r in info.value.records] == ["TransientError: down"] * 3


async def test_tier_max_retries_applies_without_a_policy(scripted, make_ctx, monkeypatch) -> None:
    monkeypatch.setattr("tierflow._attempts._backoff", lambda policy, attempt, exc=None: 0.0)
    nano = scripted("nano", [TransientError("down")] * 2)  # local nano: max_retries = 1
    ctx = make_ctx({"nano": nano})

    with pytest.raises(ModelCallError):
        await call_model(engine_for(ctx), SITE, {"run_id": "r"}, [HumanMessage("hi")])

    assert len(nano.requests) == 2


async def test_timeout_is_transient(scripted, make_ctx, tmp_path: Path) -> None:
    toml = tmp_path / "tierflow.toml"
    toml.write_text("[profiles.local.tiers.nano]\ntimeout_s = 0.02\n")
    nano = scripted("nano", [tool_reply("x", {})], delay_s=0.5, check=False)

    with pytest.raises(ModelCallError) as info:
        await call(make_ctx({"nano": nano}, config_file=str(toml)))

    assert isinstance(info.value.cause, TimeoutError)
    assert len(info.value.records) == 3
    assert all(r["error"].startswith("TimeoutError") for r in info.value.records)


async def test_tools_and_tool_choice_reach_the_model(scripted, make_ctx) -> None:
    class Route(BaseModel):
        """Pick a tier."""

        to: str

    nano = scripted("nano", [tool_reply("Route", {"to": "mini"})])

    out = await call(make_ctx({"nano": nano}), tools=[Route], tool_choice="Route")

    assert out.message.tool_calls[0]["args"] == {"to": "mini"}
    assert nano.requests[0].tool_names == ["Route"]
    assert nano.requests[0].tool_choice == "Route"
    assert out.state_update() == {"usage": [out.records[0]]}


class Ticket(BaseModel):
    text: str


class Label(BaseModel):
    category: str


CLASSIFY = Subagent(
    name="classify",
    description="label a ticket",
    tier="nano",
    task_schema=Ticket,
    output_schema=Label,
    prompt="Classify the ticket.",
)


def finish(category: str) -> Any:
    return tool_reply("finish", {"category": category}, usage=(50, 5))


async def run_classify(ctx: Any, thread: Any, *, saver: Any) -> dict[str, Any]:
    graph = build_subagent(CLASSIFY).compile(checkpointer=saver)
    return await graph.ainvoke(
        subagent_input("t1", Ticket(text="refund please"), {"run_id": "r"}), thread(), context=ctx
    )


async def test_persistent_transient_on_nano_escalates_to_mini(
    saver, scripted, make_ctx, thread
) -> None:
    nano = scripted("nano", [TransientError("down")] * 3)
    mini = scripted("mini", [finish("billing")])

    out = await run_classify(make_ctx({"nano": nano, "mini": mini}), thread, saver=saver)

    result = out["results"]["t1"]
    assert (result["status"], result["tier"], result["output"]) == (
        "done",
        "mini",
        {"category": "billing"},
    )
    assert [(e["from"], e["to"], e["reason"]) for e in result["escalations"]] == [
        ("nano", "mini", "error")
    ]
    assert [(r["tier"], r["error"] is None) for r in out["usage"]] == [
        ("nano", False),
        ("nano", False),
        ("nano", False),
        ("mini", True),
    ]
    assert out["usage"][-1]["escalation_reason"] == "error"


async def test_escalated_tier_still_sees_the_task_after_an_error(
    saver, scripted, make_ctx, thread
) -> None:
    nano = scripted("nano", [TransientError("down")] * 3)
    mini = scripted("mini", [finish("billing")])

    await run_classify(make_ctx({"nano": nano, "mini": mini}), thread, saver=saver)

    assert "refund please" in "\n".join(str(m.content) for m in mini.requests[0].messages)


# --- budget ledger -------------------------------------------------------------------------


FLAGSHIP = load_config("openai", require_keys=False).tier("flagship")


def test_ledger_refuses_a_reservation_that_could_cross_the_budget() -> None:
    ledger = Ledger(0.10)
    msgs = [HumanMessage("hi")]

    first = ledger.reserve(FLAGSHIP, msgs, [])
    assert first is not None and first.max_tokens == FLAGSHIP.max_output_tokens
    # concurrent calls share one budget: the second only gets what the first left over
    second = ledger.reserve(FLAGSHIP, msgs, [])
    assert second is not None and second.max_tokens < FLAGSHIP.max_output_tokens
    assert ledger.committed_usd <= 0.10 + 1e-12
    assert ledger.reserve(FLAGSHIP, msgs, []) is None  # nothing useful fits any more
    ledger.settle(first, None)
    assert ledger.reserve(FLAGSHIP, msgs, []) is not None


def test_ledger_settles_reservations_with_real_cost() -> None:
    ledger = Ledger(1.0)
    ledger.absorb([{"id": "old", "cost_usd": 0.25}, {"id": "old", "cost_usd": 0.25}])
    call = ledger.reserve(FLAGSHIP, [HumanMessage("hi")], [])
    assert call is not None

    ledger.settle(call, {"id": "new", "cost_usd": 0.1})
    ledger.settle(call, {"id": "new", "cost_usd": 0.1})  # idempotent

    assert ledger.spent_usd == pytest.approx(0.35)
    assert ledger.committed_usd == pytest.approx(0.35)
    assert Ledger(None).remaining_usd() is None


def test_max_tokens_is_clamped_to_what_the_budget_left_pays() -> None:
    msgs = [HumanMessage("hi")]
    full = plan_call(FLAGSHIP, msgs, [], None)
    assert full is not None and full[1] == FLAGSHIP.max_output_tokens
    small = plan_call(FLAGSHIP, msgs, [], 0.005)
    assert small is not None
    estimate, max_tokens = small
    assert MIN_OUTPUT_TOKENS <= max_tokens < FLAGSHIP.max_output_tokens
    assert estimate <= 0.005
    assert plan_call(FLAGSHIP, msgs, [], 0.0005) is None  # under the useful minimum


def test_estimate_is_an_upper_bound_with_full_output() -> None:
    short = plan_call(FLAGSHIP, [HumanMessage("hi")], [], None)
    long = plan_call(FLAGSHIP, [HumanMessage("word " * 2000)], [], None)
    assert short is not None and long is not None

    assert short[0] > FLAGSHIP.max_output_tokens * FLAGSHIP.price.output / 1e6
    assert long[0] > short[0] + 2000 * FLAGSHIP.price.input / 1e6  # >= one token per word


def test_a_budgeted_call_without_a_run_is_a_clear_error() -> None:
    with pytest.raises(RunIdentityError, match="begin"):
        ledger_for({"budget_usd": 1.0})


def test_ledger_is_per_run_and_keeps_its_budget_when_state_lacks_it() -> None:
    a, b = {"run_id": uuid.uuid4().hex, "budget_usd": 0.5}, {"run_id": uuid.uuid4().hex}
    ledger = ledger_for(a)

    assert ledger_for(b) is not ledger and ledger_for(b).budget_usd is None
    assert ledger_for({"run_id": a["run_id"]}).budget_usd == 0.5  # missing never lifts it
    assert ledger_for({**a, "budget_usd": 0.2}).budget_usd == 0.5  # only a raise changes it
    assert ledger_for({**a, "budget_usd": 0.8}) is ledger and ledger.budget_usd == 0.8
    end_run(a)
    assert ledger_for(a) is not ledger  # dropped at the end of the run, rebuilt from state


def test_a_subagent_rebuilds_its_ledger_from_the_spend_at_dispatch() -> None:
    state = {
        "run": {"id": uuid.uuid4().hex, "budget_usd": 1.0, "spent_usd": 0.4},
        "usage": [{"id": "r1", "cost_usd": 0.1}],
    }
    assert ledger_for(state).spent_usd == pytest.approx(0.5)


# --- budget gate in a graph run ------------------------------------------------------------

# Enough for the first round ($0.00682) with max_tokens clamped, not for a second supervisor
# call: its input estimate (~$0.0037) plus the useful minimum of output exceeds what is left.
BUDGET = 0.010


def budget_models(scripted: Any, *, second: list[Any] | None = None, mini_extra: list[Any] = ()):
    """Openai-priced run: decide ($0.0055), two native mini steps, then whatever ``second`` says."""
    flag = scripted(
        "flag",
        [
            tool_reply(
                "decide",
                {
                    "plan": "find it",
                    "done": False,
                    "delegate": [{"subagent": "search", "task": {"query": "class RetryPolicy"}}],
                },
                usage=(1000, 200),
            ),
            *(second or []),
        ],
    )
    mini = scripted(
        "mini",
        [
            tool_reply("grep", {"pattern": "class RetryPolicy"}, usage=(500, 50)),
            tool_reply(
                "finish",
                {
                    "findings": [
                        {"path": "pkg/retry.py", "line": 6, "snippet": "class RetryPolicy:"}
                    ],
                    "summary": "found",
                },
                usage=(600, 60),
            ),
            *mini_extra,
        ],
    )
    return flag, mini


DONE = tool_reply("decide", {"plan": "enough", "delegate": [], "done": True}, usage=(1200, 100))
ANSWER = tool_reply(
    "final_answer",
    {"answer": "pkg/retry.py:6", "citations": [{"path": "pkg/retry.py", "line": 6}]},
    usage=(900, 100),
)


async def start(
    flag: Any, mini: Any, make_ctx: Any, thread: Any, root: Path, budget: float, *, saver: Any
):
    graph = build().compile(checkpointer=saver)
    ctx, cfg = make_ctx({"flagship": flag, "mini": mini}, profile="openai"), thread()
    inp = {
        "request": "Where is RetryPolicy defined?",
        "env": {"root": str(root)},
        "budget_usd": budget,
    }
    out = await graph.ainvoke(inp, cfg, context=ctx)
    return graph, ctx, cfg, out


def budget_interrupt(out: dict[str, Any]) -> dict[str, Any]:
    (intr,) = out["__interrupt__"]
    assert intr.value["kind"] == "budget"
    return intr.value


async def test_budget_interrupts_before_the_call(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag, mini = budget_models(scripted)

    *_, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)

    gate = budget_interrupt(out)
    assert len(flag.requests) == 1  # the second supervisor call was never made
    assert (gate["node"], gate["tier"], gate["cheaper_tier"]) == ("supervisor", "flagship", "mini")
    assert gate["options"] == ["raise", "cheaper", "stop"]
    assert gate["budget_usd"] == BUDGET
    # 0.0055 (supervisor) + 500*0.75+50*4.5 + 600*0.75+60*4.5 per 1M (mini)
    assert gate["spent_usd"] == pytest.approx(0.0055 + 0.0006 + 0.00072, abs=1e-12)
    assert gate["spent_usd"] == pytest.approx(spent_usd(out["usage"]), abs=1e-12)
    assert gate["remaining_usd"] == pytest.approx(BUDGET - gate["spent_usd"], abs=1e-9)


async def test_budget_raise_continues(saver, scripted, make_ctx, thread, qa_root) -> None:
    flag, mini = budget_models(scripted, second=[DONE, ANSWER])
    graph, ctx, cfg, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)
    budget_interrupt(out)

    out = await graph.ainvoke(
        Command(resume={"action": "raise", "budget_usd": 1.0}), cfg, context=ctx
    )

    assert out["status"] == "answered"
    assert out["budget_usd"] == 1.0
    assert len(flag.requests) == 3
    assert spent_usd(out["usage"]) <= 1.0


async def test_budget_stop_ends_without_another_request(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag, mini = budget_models(scripted)
    graph, ctx, cfg, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)
    budget_interrupt(out)

    out = await graph.ainvoke(Command(resume={"action": "stop"}), cfg, context=ctx)

    assert out["status"] == "stopped"
    assert out.get("answer") is None and "__interrupt__" not in out
    assert len(flag.requests) == 1
    assert spent_usd(out["usage"]) <= BUDGET
    assert (await graph.aget_state(cfg)).next == ()


async def test_budget_cheaper_moves_the_call_down(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag, mini = budget_models(scripted, mini_extra=[DONE, ANSWER])
    graph, ctx, cfg, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)
    budget_interrupt(out)

    out = await graph.ainvoke(Command(resume={"action": "cheaper"}), cfg, context=ctx)
    gate = budget_interrupt(out)  # the answer would cross the budget on flagship as well
    assert (gate["node"], gate["tier"]) == ("answer", "flagship")
    out = await graph.ainvoke(Command(resume="cheaper"), cfg, context=ctx)

    assert out["status"] == "answered"
    assert len(flag.requests) == 1
    assert [r.tool_choice for r in mini.requests[2:]] == ["decide", "final_answer"]
    late = [(r["node"], r["tier"]) for r in out["usage"][-2:]]
    assert late == [("supervisor", "mini"), ("answer", "mini")]
    assert spent_usd(out["usage"]) <= BUDGET


@pytest.mark.parametrize(
    ("resume", "message"),
    [
        ({"action": "spend"}, "resume with {'action': 'raise'"),
        ({"action": "raise"}, "needs a positive 'budget_usd'"),
    ],
)
async def test_budget_resume_must_be_an_option(
    saver, resume, message, scripted, make_ctx, thread, qa_root
) -> None:
    flag, mini = budget_models(scripted)
    graph, ctx, cfg, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)
    assert budget_interrupt(out)["error"] is None

    out = await graph.ainvoke(Command(resume=resume), cfg, context=ctx)

    gate = budget_interrupt(out)  # asked again, with the problem spelled out
    assert message in gate["error"]
    assert (gate["node"], gate["tier"]) == ("supervisor", "flagship")
    assert len(flag.requests) == 1


async def test_budget_resume_after_an_invalid_value_works(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag, mini = budget_models(scripted, second=[DONE, ANSWER])
    graph, ctx, cfg, out = await start(flag, mini, make_ctx, thread, qa_root, BUDGET, saver=saver)
    budget_interrupt(out)
    out = await graph.ainvoke(Command(resume={"action": "raise"}), cfg, context=ctx)
    assert budget_interrupt(out)["error"]

    out = await graph.ainvoke(
        Command(resume={"action": "raise", "budget_usd": 1.0}), cfg, context=ctx
    )

    assert out["status"] == "answered"
    assert out["budget_usd"] == 1.0


EXPENSIVE_DECIDE = (1000, 4000)  # $0.0625: leaves $0.001, under a useful mini request (~$0.0016)
SUBAGENT_BUDGET = 0.0635


async def test_budget_stop_in_a_subagent_stops_its_task(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [
            tool_reply(
                "decide",
                {
                    "plan": "p",
                    "done": False,
                    "delegate": [{"subagent": "search", "task": {"query": "x"}}],
                },
                usage=EXPENSIVE_DECIDE,
            )
        ],
    )
    mini = scripted("mini", [])
    graph, ctx, cfg, out = await start(
        flag, mini, make_ctx, thread, qa_root, SUBAGENT_BUDGET, saver=saver
    )
    gate = budget_interrupt(out)
    assert (gate["node"], gate["subagent"], gate["tier"]) == ("search", "search", "mini")

    out = await graph.ainvoke(Command(resume={"action": "stop"}), cfg, context=ctx)

    assert out["results"]["t1.1-search"]["status"] == "stopped"
    assert mini.requests == [] and len(flag.requests) == 1
    assert (await graph.aget_state(cfg)).next == ()


async def test_budget_stop_in_a_subagent_marks_the_run_stopped(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [
            tool_reply(
                "decide",
                {
                    "plan": "p",
                    "done": False,
                    "delegate": [{"subagent": "search", "task": {"query": "x"}}],
                },
                usage=EXPENSIVE_DECIDE,
            )
        ],
    )
    graph, ctx, cfg, out = await start(
        flag, scripted("mini"), make_ctx, thread, qa_root, SUBAGENT_BUDGET, saver=saver
    )
    budget_interrupt(out)

    out = await graph.ainvoke(Command(resume={"action": "stop"}), cfg, context=ctx)

    assert out.get("status") == "stopped"


# --- hostile provider responses and secrets in URLs ------------------------------------------


def test_a_200_whose_body_is_not_json_is_transient() -> None:
    """What langchain-openai raises for a proxy's HTML error page is retried, not fatal."""
    import asyncio

    from langchain_openai import ChatOpenAI

    from tests.chat_stub import stub_server
    from tierflow.runtime import _is_transient

    with stub_server(b"<html><body>502 Bad Gateway</body></html>") as url:
        model = ChatOpenAI(base_url=url, api_key="x", max_retries=0)
        with pytest.raises(Exception) as caught:
            asyncio.run(model.ainvoke("hi"))
    assert _is_transient(caught.value), repr(caught.value)


async def test_credentials_in_a_base_url_never_reach_the_records(
    scripted, make_ctx, monkeypatch
) -> None:
    from tierflow.config import public_url

    assert public_url("http://user:secret@host:8080/v1") == "http://host:8080/v1"
    assert public_url("https://host/v1") == "https://host/v1"
    monkeypatch.setenv("TIERFLOW_TIERS__NANO__BASE_URL", "https://bob:s3cret@proxy.example/v1")
    nano = scripted("nano", [TransientError("https://bob:s3cret@proxy.example/v1 blip"),
                             tool_reply("x", {}, usage=(10, 1))])  # fmt: skip

    out = await call(make_ctx({"nano": nano}, profile="openai"))

    assert [r["endpoint"] for r in out.records] == ["https://proxy.example/v1"] * 2
    assert all("s3cret" not in (r["error"] or "") for r in out.records)


def test_two_runs_in_one_process_reuse_no_client_of_a_closed_event_loop(monkeypatch) -> None:
    """Each asyncio.run has its own loop; a cached async HTTP client must not outlive it."""
    import asyncio

    from tests.chat_stub import chat_server
    from tierflow.runtime import RunContext

    with chat_server({"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}) as url:
        monkeypatch.setenv("TIERFLOW_TIERS__NANO__BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        ctx = RunContext(profile="openai")
        first = asyncio.run(call(ctx))
        second = asyncio.run(call(ctx))  # a new loop: the first loop's pool is closed
    assert first.message is not None and second.message is not None
    assert [r["error"] for r in first.records + second.records] == [None, None]


def test_retry_after_is_honoured_and_capped() -> None:
    from langgraph.types import RetryPolicy

    from tierflow._attempts import MAX_RETRY_AFTER_S, _backoff

    policy = RetryPolicy(initial_interval=0.5, backoff_factor=2.0, jitter=False)

    def limited(headers: dict[str, str]) -> openai.RateLimitError:
        response = httpx.Response(429, headers=headers, request=httpx.Request("POST", URL))
        return openai.RateLimitError("slow down", response=response, body=None)

    assert _backoff(policy, 2) == 1.0  # no header: exponential backoff
    assert _backoff(policy, 2, limited({"Retry-After": "7"})) == 7.0
    assert _backoff(policy, 2, limited({"retry-after-ms": "250"})) == 0.25
    assert _backoff(policy, 2, limited({"Retry-After": "3600"})) == MAX_RETRY_AFTER_S
    assert _backoff(policy, 2, limited({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) == 1.0


def test_an_unreachable_endpoint_is_named_with_its_fix(monkeypatch) -> None:
    import asyncio

    from tierflow.runtime import RunContext

    monkeypatch.setenv("TIERFLOW_TIERS__NANO__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TIERFLOW_TIERS__NANO__MAX_RETRIES", "0")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(ModelCallError) as caught:
        asyncio.run(call(RunContext(profile="openai")))
    assert "could not reach http://127.0.0.1:9/v1" in str(caught.value)
    assert "tierflow local up" in str(caught.value)
