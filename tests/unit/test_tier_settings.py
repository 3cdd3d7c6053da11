"""Tier settings users pay by: reasoning effort, service tier and verbosity, per tier.

Over HTTP against a recording stub (tests/chat_stub.py) through the real ChatOpenAI path:
the settings reach the request body only where a tier sets them, a flex reply is priced at
the flex price, a flex tier answered 429 falls back to the standard tier after its retries,
and a ladder may climb effort (the same model) before it climbs model.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import RetryPolicy

from tests.chat_stub import Reply, completion, rate_limited, recording_chat_server
from tierflow.budget import plan_call
from tierflow.calling import CallOutcome, CallSite, call_model
from tierflow.config import Price, load_config
from tierflow.errors import ConfigError
from tierflow.models import endpoints_of
from tierflow.pricing import cost_usd
from tierflow.runtime import RunContext, engine_for
from tierflow.tiers import POLICIES, climb
from tierflow.usage import UsageRecord, reprice, spent_usd

pytestmark = pytest.mark.usefixtures("isolated_env")

SETTINGS = ("reasoning_effort", "service_tier", "verbosity")
STANDARD = Price(input=0.75, cached_input=0.075, output=4.50)  # the openai profile's mini
FLEX = Price(input=0.375, cached_input=0.0375, output=2.25)  # its Batch price
PRIORITY = Price(input=1.50, cached_input=0.15, output=9.00)
USAGE = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
         "prompt_tokens_details": {"cached_tokens": 400}}  # fmt: skip
FAST = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=3)

# The openai profile, extended in a user's tierflow.toml: mini at low effort, the same model
# at high effort one rung up, and flex / priority variants of mini off the ladder.
PROFILE = """
[profiles.openai]
ladder = ["nano", "mini", "mini-high", "flagship"]

[profiles.openai.tiers.mini]
base_url = "{url}"
reasoning_effort = "low"
verbosity = "low"

[profiles.openai.tiers.mini-high]
like = "mini"
reasoning_effort = "high"

[profiles.openai.tiers.mini-flex]
like = "mini"
service_tier = "flex"
flex_price = {{ input = 0.375, cached_input = 0.0375, output = 2.25 }}
{flex_extra}

[profiles.openai.tiers.mini-priority]
like = "mini"
service_tier = "priority"
priority_price = {{ input = 1.50, cached_input = 0.15, output = 9.00 }}
"""


def answer(service_tier: str | None = "default") -> Any:
    """A stub reply: a completion carrying USAGE, reporting ``service_tier`` like OpenAI."""
    extra = {"service_tier": service_tier} if service_tier else {}
    return lambda body: (200, completion(USAGE, **extra))


def profile(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, url: str, flex_extra: str = ""
) -> RunContext:
    (isolated_env / "tierflow.toml").write_text(PROFILE.format(url=url, flex_extra=flex_extra))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return RunContext(profile="openai", retry=FAST)


def call(ctx: RunContext, tier: str) -> CallOutcome:
    site = CallSite(node="unit", tier=tier)
    state = {"run_id": uuid.uuid4().hex}
    return asyncio.run(
        call_model(engine_for(ctx), site, state, [HumanMessage("hi")], retry=ctx.retry)
    )


def records(out: CallOutcome) -> list[UsageRecord]:
    return [UsageRecord.model_validate(r) for r in out.records]


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("reasoning_effort", "max", "'minimal', 'low', 'medium', 'high'"),
        ("service_tier", "cheap", "'auto', 'default', 'flex' or 'priority'"),
        ("verbosity", "terse", "'low', 'medium' or 'high'"),
    ],
)
def test_a_bad_setting_names_the_allowed_values(field: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("openai", overrides={"tiers": {"mini": {field: value}}}, require_keys=False)

    assert info.value.field == f"tiers.mini.{field}"
    assert allowed in info.value.problem and allowed in info.value.fix
    assert info.value.fix.startswith("use one of")


@pytest.mark.parametrize("service_tier", ["flex", "priority"])
def test_a_priced_service_tier_without_its_price_says_what_to_add(service_tier: str) -> None:
    overrides = {"tiers": {"mini": {"service_tier": service_tier}}}

    with pytest.raises(ConfigError) as info:
        load_config("openai", overrides=overrides, require_keys=False)

    assert info.value.field == "tiers.mini.service_tier"
    assert f"billed at {service_tier}_price, which is not set" in info.value.problem
    assert info.value.fix.startswith(f"add {service_tier}_price = {{ input = ...")


def test_a_fallback_at_a_priced_service_tier_needs_that_price_too() -> None:
    fallback = {"base_url": "https://eu.api.example/v1", "service_tier": "flex"}
    overrides = {"tiers": {"mini": {"fallbacks": [fallback]}}}

    with pytest.raises(ConfigError) as info:
        load_config("openai", overrides=overrides, require_keys=False)

    assert info.value.field == "tiers.mini.fallbacks"
    assert "flex_price" in info.value.fix


def test_a_tier_like_another_is_its_table_with_settings_changed() -> None:
    overrides = {
        "ladder": ["nano", "mini", "mini-high", "flagship"],
        "tiers": {"mini-high": {"like": "mini", "reasoning_effort": "high"}},
    }
    cfg = load_config("openai", overrides=overrides, require_keys=False)

    mini, high = cfg.tier("mini"), cfg.tier("mini-high")
    assert (high.name, high.model, high.price, high.timeout_s) == (
        "mini-high", mini.model, mini.price, mini.timeout_s,
    )  # fmt: skip
    assert (mini.reasoning_effort, high.reasoning_effort) == (None, "high")
    assert cfg.tier("nano").model_settings == {} and high.model_settings == {
        "reasoning_effort": "high"
    }


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ({"mini-high": {"like": "huge"}}, "names tier 'huge', which is not declared"),
        ({"mini": {"like": "nano"}, "nano": {"like": "mini"}}, "in a loop (mini -> nano -> mini)"),
    ],
)
def test_like_names_a_declared_tier_without_loops(tiers: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("openai", overrides={"tiers": tiers}, require_keys=False)

    assert info.value.field.endswith(".like") and problem in info.value.problem


def test_only_a_flex_tier_gets_a_standard_tier_fallback() -> None:
    flex = {"service_tier": "flex", "flex_price": FLEX.model_dump()}
    cfg = load_config("openai", overrides={"tiers": {"mini": flex}}, require_keys=False)

    primary, standard = endpoints_of(cfg.tier("mini"))
    assert (primary.base_url, primary.service_tier) == (standard.base_url, None)
    assert (standard.model, standard.service_tier) == ("gpt-5.4-mini", "default")
    assert len(endpoints_of(cfg.tier("nano"))) == 1


# --- the request body ----------------------------------------------------------------------


def test_settings_reach_the_request_body(isolated_env: Path, monkeypatch) -> None:
    with recording_chat_server(answer("flex")) as server:
        ctx = profile(isolated_env, monkeypatch, server.url)
        call(ctx, "mini")
        call(ctx, "mini-flex")

    plain, flex = server.bodies
    assert (plain["model"], plain["reasoning_effort"], plain["verbosity"]) == (
        "gpt-5.4-mini", "low", "low",
    )  # fmt: skip
    assert "service_tier" not in plain  # not set on mini: the provider's default applies
    assert {k: flex.get(k) for k in SETTINGS} == {
        "reasoning_effort": "low", "service_tier": "flex", "verbosity": "low",
    }  # fmt: skip


def test_the_local_profile_sends_none_of_them(monkeypatch) -> None:
    # llama-cpp-python's server ignores unknown fields, but a local tier has no reason to get them.
    with recording_chat_server(answer(None)) as server:
        monkeypatch.setenv("TIERFLOW_TIERS__NANO__BASE_URL", server.url)
        out = call(RunContext(profile="local", retry=FAST), "nano")

    (body,) = server.bodies
    assert not set(SETTINGS) & set(body), body
    (rec,) = records(out)
    assert (rec.error, rec.reasoning_effort, rec.service_tier) == (None, None, None)


# --- prices --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "reported", "service_tier", "price"),
    [
        ("mini-flex", "flex", "flex", FLEX),
        ("mini-flex", None, "flex", FLEX),  # not reported: the requested tier prices it
        ("mini-priority", "priority", "priority", PRIORITY),
        ("mini-priority", "default", "default", STANDARD),  # downgraded: billed at standard
        ("mini", "default", "default", STANDARD),
    ],
)
def test_the_service_tier_that_served_a_request_prices_it(
    isolated_env: Path, monkeypatch, tier: str, reported, service_tier: str, price: Price
) -> None:
    with recording_chat_server(answer(reported)) as server:
        ctx = profile(isolated_env, monkeypatch, server.url)
        out = call(ctx, tier)

    (rec,) = records(out)
    expected = cost_usd(price, input_tokens=1000, cached_tokens=400, output_tokens=50)
    assert (rec.service_tier, rec.cost_usd, rec.cached_tokens) == (service_tier, expected, 400)
    assert out.message is not None and out.message.usage_metadata is not None
    assert out.message.usage_metadata["total_cost"] == expected  # type: ignore[typeddict-item]
    assert spent_usd(reprice(out.records, engine_for(ctx).config)) == expected


def test_a_priority_tier_reserves_at_its_price(isolated_env: Path, monkeypatch) -> None:
    cfg = engine_for(profile(isolated_env, monkeypatch, "http://127.0.0.1:9/v1")).config
    messages = [HumanMessage("hi")]

    mini, priority, flex = (plan_call(cfg.tier(t), messages, [], None) for t in
                            ("mini", "mini-priority", "mini-flex"))  # fmt: skip

    assert mini is not None and priority is not None and flex is not None
    assert priority[0] == pytest.approx(2 * mini[0])
    assert flex[0] == mini[0]  # its standard-tier fallback may answer


# --- flex fallback -------------------------------------------------------------------------


def flex_busy(body: dict[str, Any]) -> Reply:
    """OpenAI without flex capacity: 429 for flex, an answer at the standard tier."""
    if body.get("service_tier") == "flex":
        return rate_limited()
    return 200, completion(USAGE, service_tier=body.get("service_tier") or "default")


def test_flex_answered_429_falls_back_to_the_standard_tier(isolated_env: Path, monkeypatch) -> None:
    with recording_chat_server(flex_busy) as server:
        ctx = profile(isolated_env, monkeypatch, server.url)
        out = call(ctx, "mini-flex")

    assert [b.get("service_tier") for b in server.bodies] == ["flex"] * 3 + ["default"]
    *refused, answered = records(out)
    for rec in refused:
        assert (rec.cause, rec.cost_usd, rec.service_tier) == ("error status", 0.0, "flex")
        assert rec.error is not None and "RateLimitError: Error code: 429" in rec.error
    standard = cost_usd(STANDARD, input_tokens=1000, cached_tokens=400, output_tokens=50)
    assert (answered.error, answered.service_tier, answered.cost_usd) == (None, "default", standard)
    assert {r.tier for r in (*refused, answered)} == {"mini-flex"}
    assert {r.endpoint for r in (*refused, answered)} == {server.url}
    assert spent_usd(out.records) == standard  # the 429s cost nothing
    assert out.message is not None and out.message.content == "hello"


def test_an_open_flex_circuit_leaves_the_standard_tier_open(
    isolated_env: Path, monkeypatch
) -> None:
    with recording_chat_server(flex_busy) as server:
        ctx = profile(isolated_env, monkeypatch, server.url, "breaker_failures = 1")
        first, second = call(ctx, "mini-flex"), call(ctx, "mini-flex")

    # The first call's one 429 opens the flex circuit; the standard tier answers both calls.
    assert [b.get("service_tier") for b in server.bodies] == ["flex", "default", "default"]
    assert [r.service_tier for r in records(first)] == ["flex", "default"]
    assert [r.service_tier for r in records(second)] == ["default"]


def test_an_unreachable_flex_endpoint_is_not_tried_again_at_standard(
    isolated_env: Path, monkeypatch
) -> None:
    from tierflow.errors import ModelCallError

    ctx = profile(isolated_env, monkeypatch, "http://127.0.0.1:9/v1")  # nothing listens there

    with pytest.raises(ModelCallError) as info:
        call(ctx, "mini-flex")

    assert [r["service_tier"] for r in info.value.records] == ["flex"] * 3
    assert {r["cause"] for r in info.value.records} == {"never sent"}


# --- a ladder that climbs effort before model ----------------------------------------------


def test_the_ladder_climbs_effort_before_model(isolated_env: Path, monkeypatch) -> None:
    with recording_chat_server(answer()) as server:
        ctx = profile(isolated_env, monkeypatch, server.url)
        cfg = engine_for(ctx).config
        path = ["mini"]
        while (up := climb(path[-1], POLICIES["tiered"], cfg)) is not None:
            path.append(up)
        low, high = call(ctx, "mini"), call(ctx, "mini-high")

    assert path == ["mini", "mini-high", "flagship"]
    assert [b["reasoning_effort"] for b in server.bodies] == ["low", "high"]
    assert {b["model"] for b in server.bodies} == {"gpt-5.4-mini"}
    shown = [(r.tier, r.model, r.reasoning_effort) for r in records(low) + records(high)]
    assert shown == [("mini", "gpt-5.4-mini", "low"), ("mini-high", "gpt-5.4-mini", "high")]
    # One model, two efforts: the response cache keeps their answers apart.
    engine, msgs = engine_for(ctx), [HumanMessage("hi")]
    assert engine.request_key("mini", msgs, [], None, {}) != engine.request_key(
        "mini-high", msgs, [], None, {}
    )
