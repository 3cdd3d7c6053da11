"""tierflow.middleware over real HTTP: create_agent, ChatOpenAI and a stand-in server per tier.

Each tier is its own stub server (tests/chat_stub.py) that always gives one reply: a poor
answer, a good one, or the same tool call again. What the client sent is kept, so the output
cap the budget clamped is checked on the wire, and the tokens the server reported (cached ones
included) are what the records are priced from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.chat_stub import chat_server
from tierflow.config import Price, TierConfig, TierSpec
from tierflow.middleware import BudgetMiddleware, TierMiddleware
from tierflow.usage import spent_usd

pytestmark = pytest.mark.integration

LADDER = ("nano", "mini", "flagship")
# USD per token at powers of two, so sums of dollars are exact: input, cached input, output.
PRICES = {"nano": (2**-12, 2**-14, 2**-10), "mini": (2**-11, 2**-13, 2**-9),
          "flagship": (2**-10, 2**-12, 2**-8)}  # fmt: skip
USAGE = {"prompt_tokens": 64, "completion_tokens": 16, "total_tokens": 80,
         "prompt_tokens_details": {"cached_tokens": 32}}  # fmt: skip


@tool
def lookup(q: str) -> str:
    """Look ``q`` up in the facts table."""
    return f"{q} = 42"


def _config(urls: dict[str, str], max_output_tokens: int = 128) -> TierConfig:
    tiers = {
        name: TierSpec(
            name=name, model=f"{name}-model", base_url=urls[name], timeout_s=10, max_retries=0,
            price=Price(input=i * 1e6, cached_input=c * 1e6, output=o * 1e6),
            max_output_tokens=max_output_tokens,
        )
        for name, (i, c, o) in PRICES.items()
    }  # fmt: skip
    return TierConfig(profile="http-stub", ladder=LADDER, tiers=tiers)


def _cost(tier: str) -> float:
    """What one reply carrying USAGE costs on ``tier``: 32 fresh and 32 cached in, 16 out."""
    fresh, cached, out = PRICES[tier]
    return 32 * fresh + 32 * cached + 16 * out


@contextlib.contextmanager
def _servers(**replies: dict[str, Any]) -> Iterator[tuple[dict[str, str], dict[str, list[Any]]]]:
    """One stub server per tier (each always gives its reply); yields (urls, request bodies)."""
    seen: dict[str, list[Any]] = {t: [] for t in LADDER}
    with contextlib.ExitStack() as stack:
        urls = {t: stack.enter_context(chat_server(USAGE, seen=seen[t], **replies.get(t, {})))
                for t in LADDER}  # fmt: skip
        yield urls, seen


def _says_42(request: str, reply: Any, state: Any) -> str | None:
    return None if "42" in reply.text else "the answer must give the number"


async def _ask(agent: Any) -> dict[str, Any]:
    return await agent.ainvoke({"messages": [("user", "What is x?")]})


async def test_a_poor_answer_climbs_through_chat_openai_clients_of_your_own() -> None:
    with _servers(nano={"content": "no idea"}, mini={"content": "maybe 7"},
                  flagship={"content": "x is 42"}) as (urls, seen):  # fmt: skip
        models = {t: ChatOpenAI(model=f"{t}-model", base_url=urls[t], api_key="sk-test",
                                timeout=10, max_retries=0) for t in LADDER}  # fmt: skip
        mw = TierMiddleware(_config(urls), models=models, verifier=_says_42)
        out = await _ask(create_agent(model=models["flagship"], tools=[lookup], middleware=[mw]))
    assert out["messages"][-1].text == "x is 42"
    assert [(r["tier"], r["escalation_reason"]) for r in out["usage"]] == [
        ("nano", None), ("mini", "verifier_rejected"), ("flagship", "verifier_rejected")]  # fmt: skip
    assert [len(seen[t]) for t in LADDER] == [1, 1, 1]
    assert [r["endpoint"] for r in out["usage"]] == [urls[t] for t in LADDER]
    assert all(r["input_tokens"] == 64 and r["cached_tokens"] == 32 for r in out["usage"])
    assert [r["cost_usd"] for r in out["usage"]] == [_cost(t) for t in LADDER]


async def test_a_tool_call_loop_over_http_climbs_and_the_budget_clamps_on_the_wire() -> None:
    # nano's server calls lookup("x") again and again: the third repeat of one call is a loop.
    with _servers(nano={"tool_call": ("lookup", {"q": "x"})},
                  mini={"content": "x is 42"}) as (urls, seen):  # fmt: skip
        cfg = _config(urls)  # no models: tierflow builds each tier's client from the profile
        agent = create_agent(model=ChatOpenAI(model="unused", base_url=urls["flagship"],
                                              api_key="sk-test", timeout=10),
                             tools=[lookup],
                             middleware=[TierMiddleware(cfg), BudgetMiddleware(1.0)])  # fmt: skip
        out = await _ask(agent)
    assert out["messages"][-1].text == "x is 42"
    assert [(r["tier"], r["escalation_reason"]) for r in out["usage"]] == [
        ("nano", None), ("nano", None), ("nano", None), ("mini", "loop_detected")]  # fmt: skip
    assert [len(seen[t]) for t in LADDER] == [3, 1, 0]
    sent = seen["nano"][0]
    # The cap the budget reserved for, as ChatOpenAI sends it; loopback servers get it twice.
    assert sent["max_completion_tokens"] == sent["max_tokens"] == 128
    assert spent_usd(out["usage"]) == 3 * _cost("nano") + _cost("mini")


async def test_a_runaway_agent_over_http_stops_before_it_spends_past_its_budget() -> None:
    # The server calls a tool forever; only the budget ends the run. Each request reserves its
    # worst case (the input estimate plus its output cap) and is clamped once that does not fit.
    budget_usd = 1.0
    with _servers(flagship={"tool_call": ("lookup", {"q": "x"})}) as (urls, seen):
        model = ChatOpenAI(model="flagship-model", base_url=urls["flagship"], api_key="sk-test",
                           timeout=10, max_retries=0)  # fmt: skip
        budget = BudgetMiddleware(budget_usd, at_limit="stop", profile=_config(urls))
        out = await _ask(create_agent(model=model, tools=[lookup], middleware=[budget]))
    sent = [body["max_completion_tokens"] for body in seen["flagship"]]
    assert len(sent) == len(out["usage"]) >= 3  # every request sent is recorded
    assert sent[0] == 128 and sent[-1] < 128 and all(n >= 64 for n in sent)
    assert spent_usd(out["usage"]) == len(sent) * _cost("flagship") <= budget_usd
    assert out["status"] == "budget_exhausted"
    assert "budget exhausted" in out["messages"][-1].text


def _readme_agent(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str]) -> Any:
    """The README's create_agent block, run as written, its openai tiers pointed at the stubs."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### LangChain agents (create_agent)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert len([ln for ln in code.group(1).splitlines() if ln.strip()]) <= 20
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for tier, url in urls.items():
        monkeypatch.setenv(f"TIERFLOW_TIERS__{tier.upper()}__BASE_URL", url)
        monkeypatch.setenv(f"TIERFLOW_TIERS__{tier.upper()}__MAX_RETRIES", "0")
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our README
    return namespace["agent"]


async def test_the_readme_agent_escalates_and_stops_at_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's 10 lines: an empty nano reply climbs to mini; a run that has spent its
    $0.05 asks at the limit, and ``stop`` ends it with nothing more spent."""
    from langgraph.types import Command

    with contextlib.ExitStack() as stack:
        urls = {
            "nano": stack.enter_context(chat_server(USAGE, content="")),
            "mini": stack.enter_context(chat_server(USAGE, content="the repo is a CLI")),
            "flagship": stack.enter_context(chat_server(USAGE, content="flagship")),
        }
        agent = _readme_agent(monkeypatch, urls)
        cfg = {"configurable": {"thread_id": "readme-1"}}
        out = await agent.ainvoke({"messages": [("user", "Summarize the repo")]}, cfg)
        assert out["messages"][-1].content == "the repo is a CLI"
        assert [r["tier"] for r in out["usage"]] == ["nano", "mini"]
        climbs = [e for e in out["events"] if e["kind"] == "escalation"]
        assert climbs and climbs[0]["reason"] == "verifier_rejected"

    # nano's empty reply reports 39,980 output tokens ($0.049975 at $1.25 / 1M): mini's
    # request no longer fits the $0.05, so the run asks before it is sent.
    costly = {**USAGE, "completion_tokens": 39_980, "total_tokens": 40_044}
    with contextlib.ExitStack() as stack:
        seen_mini: list[Any] = []
        urls = {
            "nano": stack.enter_context(chat_server(costly, content="")),
            "mini": stack.enter_context(chat_server(USAGE, content="late", seen=seen_mini)),
            "flagship": stack.enter_context(chat_server(USAGE, content="late")),
        }
        agent = _readme_agent(monkeypatch, urls)
        cfg = {"configurable": {"thread_id": "readme-2"}}
        waiting = await agent.ainvoke({"messages": [("user", "Summarize the repo")]}, cfg)
        assert waiting.get("__interrupt__"), waiting
        out = await agent.ainvoke(Command(resume={"action": "stop"}), cfg)
        assert (
            out["status"] == "stopped"
        )  # the human's choice (at_limit="stop" would say budget_exhausted)
        assert seen_mini == []
        assert 0 < spent_usd(out["usage"]) <= 0.05
