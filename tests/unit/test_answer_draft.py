"""codebase_qa as shipped: a draft answer on mini, checked, repaired on the supervisor's tier when
rejected; no planning call at all when the code index covers every part of the question (the
first searches are planned from the question's parts, and their results are enough)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tierflow.errors import SpecError
from tierflow.graphs.codebase_qa.graph import SUPERVISOR
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
from tierflow.testing import tool_reply
from tierflow.tiers import POLICIES

pytestmark = pytest.mark.shipped_codebase_qa

REQUEST = "Where is RetryPolicy defined?"


def answer(path: str, line: int) -> object:
    args = {"answer": f"In {path}", "citations": [{"path": path, "line": line}]}
    return tool_reply("final_answer", args)


def decide(done: bool) -> object:
    search = [{"subagent": "search", "task": {"query": "class RetryPolicy"}}]
    return tool_reply("decide", {"plan": "look", "delegate": [] if done else search, "done": done})


def answer_calls(out: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(r["tier"], r["escalation_reason"]) for r in out["usage"] if r["node"] == "answer"]


async def run(
    make_ctx: Any, thread: Any, qa_root: Any, models: dict[str, Any], request: str = REQUEST,
    **kw: Any,
) -> Any:  # fmt: skip
    graph = build_supervisor_graph(SUPERVISOR).compile(checkpointer=InMemorySaver())
    inputs = {"request": request, "env": {"root": str(qa_root)}}
    kw.setdefault("shortcuts", True)  # as shipped: the index finds RetryPolicy, no search call
    return await graph.ainvoke(inputs, thread(), context=make_ctx(models, **kw))


def shortcuts(out: dict[str, Any]) -> list[Any]:
    return [e for e in out["events"] if e["kind"] == "shortcut" and e.get("node") == "supervisor"]


def test_the_shipped_graph_drafts_on_mini_and_knows_when_it_has_enough() -> None:
    assert SUPERVISOR.answer_tier == "mini" and SUPERVISOR.enough is not None
    assert SUPERVISOR.first_round is not None


async def test_a_right_draft_is_the_answer_and_the_flagship_is_never_called(
    scripted, make_ctx, thread, qa_root
):
    mini = scripted("mini", [answer("pkg/retry.py", 6)])
    flag = scripted("flag", [])  # the index covers the one part: no plan, no answer on it
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "mini": mini})
    assert out["status"] == "answered" and answer_calls(out) == [("mini", None)]
    assert [e["reason"] for e in shortcuts(out)] == ["first_round", "enough"]
    assert "flagship" not in [r["tier"] for r in out["usage"]]
    assert [r["task"]["query"] for r in out["results"].values()] == ["RetryPolicy"]
    assert [r["node"] for r in out["usage"]] == ["answer"]  # the search came from the index
    assert out["plans"][0].startswith("first round planned without a model")


async def test_without_index_facts_for_every_part_the_supervisor_plans_again(
    scripted, make_ctx, thread, qa_root
):
    mini = scripted("mini", [answer("pkg/retry.py", 6)])
    flag = scripted("flag", [decide(False), decide(True)])
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "mini": mini},
                    request="Which file mentions a backoff?")  # fmt: skip
    assert shortcuts(out) == [] and out["status"] in ("answered", "unverified")


async def test_a_rejected_draft_is_repaired_on_the_supervisor_s_tier(
    scripted, make_ctx, thread, qa_root
):
    mini = scripted("mini", [answer("pkg/budget.py", 1)])
    flag = scripted("flag", [answer("pkg/budget.py", 2), answer("pkg/retry.py", 6)])
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "mini": mini})
    assert out["status"] == "answered"
    assert out["answer"]["citations"] == [{"path": "pkg/retry.py", "line": 6}]
    # the draft, then two repairs on the flagship (one more than a plain answer gets)
    assert answer_calls(out) == [("mini", None), ("flagship", "verifier_rejected"),
                                 ("flagship", "verifier_rejected")]  # fmt: skip
    assert len(out["answer_problems"]) == 2


async def test_all_flagship_drafts_on_the_flagship_with_one_repair(
    scripted, make_ctx, thread, qa_root
):
    flag = scripted("flag", [answer("pkg/budget.py", 1), answer("pkg/budget.py", 2)])
    policy = dataclasses.replace(POLICIES["all-flagship"], human=False)
    out = await run(make_ctx, thread, qa_root, {"flagship": flag}, policy=policy)
    assert out["status"] == "unverified"
    assert answer_calls(out) == [("flagship", None), ("flagship", None)]


def test_a_draft_tier_needs_a_check_to_escalate_on() -> None:
    with pytest.raises(SpecError, match="answer_tier='mini' needs an answer_verifier"):
        Supervisor(subagents=[], prompt="p", answer_schema=SUPERVISOR.answer_schema,
                   answer_prompt="a", answer_tier="mini")  # fmt: skip
