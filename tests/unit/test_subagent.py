"""Subagents: forced and native steps, repairs, escalation reasons, loops, human fallback."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import BaseModel

from tests.profiles import NATIVE_PROFILE
from tierflow.graphs.codebase_qa import SEARCH, SearchTask
from tierflow.nodes.subagent import ContextPolicy, Subagent, build_subagent, subagent_input
from tierflow.testing import tool_reply

pytestmark = pytest.mark.usefixtures("isolated_env")


class Ticket(BaseModel):
    text: str


class Label(BaseModel):
    category: str


LOOKUPS: list[str] = []


@tool
def lookup(word: str) -> str:
    """Look up a word in the glossary."""
    LOOKUPS.append(word)
    return f"{word} means money"


def spec(**kwargs: Any) -> Subagent:
    base = {
        "name": "classify",
        "description": "label a ticket",
        "tier": "nano",
        "task_schema": Ticket,
        "output_schema": Label,
        "prompt": "Classify the ticket.",
        "tools": [lookup],
    }
    return Subagent(**{**base, **kwargs})


def act(action: str, usage: tuple[int, int] | None = None, **args: Any) -> Any:
    return tool_reply("next_action", {"step": {"action": action, **args}}, usage=usage)


def done(result: dict[str, Any], usage: tuple[int, int] | None = None) -> Any:
    return act("finish", usage=usage, result=result)


def text(request: Any) -> str:
    return "\n".join(str(m.content) for m in request.messages)


async def run(
    sub: Subagent,
    ctx: Any,
    thread: Any,
    task: BaseModel | None = None,
    state: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    graph = build_subagent(sub).compile(checkpointer=InMemorySaver())
    payload = subagent_input("t1", task or Ticket(text="refund please"), state or {}, **kwargs)
    return await graph.ainvoke(payload, thread(), context=ctx)


@pytest.fixture(autouse=True)
def _clear_lookups() -> None:
    LOOKUPS.clear()


async def test_forced_steps_call_tool_then_finish(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [act("lookup", word="refund"), done({"category": "billing"})])

    out = await run(spec(), make_ctx({"nano": nano}), thread)

    result = out["results"]["t1"]
    assert (result["status"], result["tier"], result["steps"]) == ("done", "nano", 2)
    assert result["output"] == {"category": "billing"} and result["escalations"] == []
    assert LOOKUPS == ["refund"]
    first, second = nano.requests
    assert first.tool_names == ["next_action"] and first.tool_choice == "next_action"
    assert '"text": "refund please"' in text(first)
    assert "Result of lookup:\nrefund means money" in text(second)
    assert [e["kind"] for e in out["events"]] == ["task_finished"]


async def test_without_tools_only_finish_is_offered(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [tool_reply("finish", {"category": "billing"})])

    out = await run(spec(tools=()), make_ctx({"nano": nano}), thread)

    assert out["results"]["t1"]["output"] == {"category": "billing"}
    assert nano.requests[0].tool_names == ["finish"]
    assert nano.requests[0].tool_choice == "finish"


async def test_prompt_names_only_the_bound_tool(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [tool_reply("finish", {"category": "billing"})])

    await run(spec(tools=()), make_ctx({"nano": nano}), thread)

    assert "next_action" not in text(nano.requests[0])


async def test_native_mode_binds_tools_and_returns_tool_messages(
    scripted, make_ctx, thread, tmp_path: Path
) -> None:
    (tmp_path / "tierflow.toml").write_text(NATIVE_PROFILE)
    nano = scripted(
        "nano",
        [tool_reply("lookup", {"word": "refund"}), tool_reply("finish", {"category": "billing"})],
    )
    ctx = make_ctx(
        {"nano": nano},
        profile="native",
        tiers=("nano", "mini"),
        config_file=str(tmp_path / "tierflow.toml"),
    )

    out = await run(spec(), ctx, thread)

    assert out["results"]["t1"]["output"] == {"category": "billing"}
    first, second = nano.requests
    assert first.tool_names == ["lookup", "finish"] and first.tool_choice == "any"
    call_id = second.messages[-2].tool_calls[0]["id"]
    reply = second.messages[-1]
    assert isinstance(reply, ToolMessage) and reply.tool_call_id == call_id
    assert reply.content == "refund means money"


async def test_native_unknown_tool_is_reported_to_the_model(
    scripted, make_ctx, thread, tmp_path: Path
) -> None:
    (tmp_path / "tierflow.toml").write_text(NATIVE_PROFILE)
    nano = scripted(
        "nano",
        [tool_reply("translate", {"word": "x"}), tool_reply("finish", {"category": "other"})],
    )
    ctx = make_ctx(
        {"nano": nano},
        profile="native",
        tiers=("nano", "mini"),
        config_file=str(tmp_path / "tierflow.toml"),
    )

    out = await run(spec(), ctx, thread)

    assert out["results"]["t1"]["status"] == "done"
    assert nano.requests[1].messages[-1].content == (
        "Error: there is no tool 'translate'. Available: lookup."
    )


async def test_one_invalid_answer_is_repaired_on_the_same_tier(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [done({"categoryx": "billing"}), done({"category": "billing"})])

    out = await run(spec(), make_ctx({"nano": nano}), thread)

    result = out["results"]["t1"]
    assert (result["tier"], result["escalations"]) == ("nano", [])
    assert "That answer was invalid: 'next_action' arguments are invalid" in text(nano.requests[1])
    assert "result.category: Field required" in text(nano.requests[1])


async def test_schema_failure_twice_escalates_and_keeps_the_work(
    scripted, make_ctx, thread
) -> None:
    nano = scripted(
        "nano",
        [
            act("lookup", word="refund"),
            done({"categoryx": "billing"}),
            tool_reply("next_action", {"nothing": True}),
        ],
    )
    mini = scripted("mini", [done({"category": "billing"}, usage=(100, 20))])

    out = await run(spec(), make_ctx({"nano": nano, "mini": mini}), thread)

    result = out["results"]["t1"]
    assert (result["status"], result["tier"]) == ("done", "mini")
    (step,) = result["escalations"]
    assert (step["from"], step["to"], step["reason"]) == ("nano", "mini", "schema_validation")
    assert "step: Field required" in step["detail"]
    assert [r["escalation_reason"] for r in out["usage"]] == [None, None, None, "schema_validation"]
    assert LOOKUPS == ["refund"]  # the tool result was handed up, not redone
    seen_by_mini = text(mini.requests[0])
    assert "Result of lookup:\nrefund means money" in seen_by_mini
    assert "moved from tier nano to mini because: schema_validation" in seen_by_mini
    assert [e["kind"] for e in out["events"]] == ["escalation", "task_finished"]


async def test_model_error_escalates_with_reason_error(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [act("lookup", word="refund"), ValueError("server said no")])
    mini = scripted("mini", [done({"category": "billing"})])

    out = await run(spec(), make_ctx({"nano": nano, "mini": mini}), thread)

    (step,) = out["results"]["t1"]["escalations"]
    assert step["reason"] == "error" and "ValueError: server said no" in step["detail"]
    assert "refund means money" in text(mini.requests[0])


async def test_verifier_rejection_escalates(scripted, make_ctx, thread, qa_root) -> None:
    wrong = {
        "findings": [{"path": "pkg/retry.py", "line": 3, "snippet": "def spend(amount):"}],
        "summary": "wrong line",
    }
    right = {
        "findings": [{"path": "pkg/budget.py", "line": 4, "snippet": "def spend(amount):"}],
        "summary": "defined in pkg/budget.py",
    }
    mini = scripted("mini", [act("grep", pattern="def spend"), done(wrong)])
    flag = scripted("flag", [done(right)])

    out = await run(
        SEARCH,
        make_ctx({"mini": mini, "flagship": flag}),
        thread,
        task=SearchTask(query="def spend"),
        state={"env": {"root": str(qa_root)}},
    )

    result = out["results"]["t1"]
    assert (result["status"], result["tier"], result["output"]) == ("done", "flagship", right)
    (step,) = result["escalations"]
    assert (step["from"], step["to"], step["reason"]) == ("mini", "flagship", "verifier_rejected")
    assert "pkg/retry.py:3 does not contain 'def spend(amount):'" in step["detail"]
    assert "pkg/budget.py:4: def spend(amount):" in text(mini.requests[1])  # real grep output
    assert "rejected by the verifier" in text(flag.requests[0])
    assert out["usage"][-1]["escalation_reason"] == "verifier_rejected"


async def test_repeated_tool_call_warns_then_escalates(scripted, make_ctx, thread, qa_root) -> None:
    mini = scripted("mini", [act("grep", pattern="MAX_ATTEMPTS")] * 3)
    found = {
        "findings": [{"path": "pkg/retry.py", "line": 3, "snippet": "MAX_ATTEMPTS = 3"}],
        "summary": "a constant",
    }
    flag = scripted("flag", [done(found)])

    out = await run(
        dataclasses.replace(SEARCH, max_steps=5),  # room for the loop before the step limit
        make_ctx({"mini": mini, "flagship": flag}),
        thread,
        task=SearchTask(query="MAX_ATTEMPTS"),
        state={"env": {"root": str(qa_root)}},
    )

    assert "You already called grep" not in text(mini.requests[1])
    assert "You already called grep with these arguments" in text(mini.requests[2])
    result = out["results"]["t1"]
    (step,) = result["escalations"]
    assert (step["from"], step["to"], step["reason"]) == ("mini", "flagship", "loop_detected")
    assert step["detail"].startswith('grep:{"glob": "*.py"')
    assert (result["status"], result["tier"]) == ("done", "flagship")
    assert out["usage"][-1]["escalation_reason"] == "loop_detected"


async def test_last_step_must_finish(scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [act("lookup", word="refund"), tool_reply("finish", {"category": "x"})])

    out = await run(spec(max_steps=2), make_ctx({"nano": nano}), thread)

    assert out["results"]["t1"]["output"] == {"category": "x"}
    last = nano.requests[1]
    assert last.tool_names == ["finish"]
    assert "You are out of steps" in str(last.messages[0].content)


async def test_without_human_fallback_the_task_fails(scripted, make_ctx, thread) -> None:
    models = {t: scripted(t, [ValueError(f"{t} down")]) for t in ("nano", "mini", "flagship")}

    out = await run(spec(human_fallback=False), make_ctx(models), thread)

    result = out["results"]["t1"]
    assert result["status"] == "failed" and result["output"] is None
    assert "error: tier 'flagship' (flagship) failed: ValueError: flagship down" == result["error"]
    assert [(e["from"], e["to"]) for e in result["escalations"]] == [
        ("nano", "mini"),
        ("mini", "flagship"),
        ("flagship", "human"),
    ]


async def failing_to_human(
    scripted: Any, make_ctx: Any, thread: Any, flagship_extra: list[Any] = (), *, saver: Any
) -> tuple[Any, Any, Any, dict[str, Any]]:
    models = {t: scripted(t, [ValueError(f"{t} down")]) for t in ("nano", "mini")}
    models["flagship"] = scripted("flagship", [ValueError("flagship down"), *flagship_extra])
    graph = build_subagent(spec()).compile(checkpointer=saver)
    ctx, cfg = make_ctx(models), thread()
    out = await graph.ainvoke(subagent_input("t1", Ticket(text="refund"), {}), cfg, context=ctx)
    return graph, ctx, cfg, out


async def test_after_the_top_tier_a_human_is_asked(saver, scripted, make_ctx, thread) -> None:
    *_, out = await failing_to_human(scripted, make_ctx, thread, saver=saver)

    (intr,) = out["__interrupt__"]
    assert intr.value["kind"] == "escalation"
    assert intr.value["options"] == ["approve", "edit", "reject"]
    assert (intr.value["subagent"], intr.value["task_id"], intr.value["reason"]) == (
        "classify",
        "t1",
        "error",
    )
    assert intr.value["task"] == {"text": "refund"}
    assert intr.value["result_schema"]["required"] == ["category"]


async def test_human_reject_fails_the_task(saver, scripted, make_ctx, thread) -> None:
    graph, ctx, cfg, _ = await failing_to_human(scripted, make_ctx, thread, saver=saver)

    out = await graph.ainvoke(
        Command(resume={"action": "reject", "note": "not needed"}), cfg, context=ctx
    )

    result = out["results"]["t1"]
    assert (result["status"], result["error"]) == ("failed", "not needed")
    assert result["escalations"][-1]["decision"] == "reject"


async def test_human_approve_retries_the_top_tier(saver, scripted, make_ctx, thread) -> None:
    graph, ctx, cfg, _ = await failing_to_human(
        scripted,
        make_ctx,
        thread,
        flagship_extra=[act("finish", result={"category": "billing"})],
        saver=saver,
    )

    out = await graph.ainvoke(Command(resume="approve"), cfg, context=ctx)

    result = out["results"]["t1"]
    assert (result["status"], result["tier"], result["output"]) == (
        "done",
        "flagship",
        {"category": "billing"},
    )


async def test_human_edit_supplies_the_result(saver, scripted, make_ctx, thread) -> None:
    graph, ctx, cfg, _ = await failing_to_human(scripted, make_ctx, thread, saver=saver)

    out = await graph.ainvoke(
        Command(resume={"action": "edit", "value": {"category": "refunds"}}), cfg, context=ctx
    )

    result = out["results"]["t1"]
    assert (result["status"], result["tier"], result["output"]) == (
        "done",
        "human",
        {"category": "refunds"},
    )


@pytest.mark.parametrize("policy", [ContextPolicy.TASK, ContextPolicy.TASK_AND_RESULTS])
async def test_context_policy(policy, scripted, make_ctx, thread) -> None:
    nano = scripted("nano", [tool_reply("finish", {"category": "billing"})])
    context = [{"subagent": "search", "output": {"summary": "EARLIER-RESULT"}}]

    await run(spec(tools=(), context=policy), make_ctx({"nano": nano}), thread, context=context)

    assert ("EARLIER-RESULT" in text(nano.requests[0])) == (policy != ContextPolicy.TASK)


async def test_prefetch_output_is_shown_with_the_task(scripted, make_ctx, thread) -> None:
    seen: list[tuple[str, dict]] = []

    def prefetch(task, env):
        seen.append((task.text, dict(env)))
        return "grep('refund') already ran:\nbilling.py:3: REFUND = True"

    nano = scripted("nano", [tool_reply("finish", {"category": "billing"})])
    await run(spec(tools=(), prefetch=prefetch), make_ctx({"nano": nano}), thread)
    assert seen == [("refund please", {})]
    assert "billing.py:3: REFUND = True" in text(nano.requests[0])


async def test_a_tool_that_hangs_is_abandoned_and_the_model_told(
    scripted, make_ctx, thread
) -> None:
    import asyncio

    @tool
    async def lookup(word: str) -> str:
        """Look up a word in the glossary."""
        await asyncio.sleep(3600)
        return "never"

    nano = scripted("nano", [act("lookup", word="refund"), done({"category": "billing"})])

    out = await run(spec(tools=[lookup], tool_timeout_s=0.05), make_ctx({"nano": nano}), thread)

    assert out["results"]["t1"]["status"] == "done"
    assert "lookup did not finish within 0.05 s" in text(nano.requests[1])
