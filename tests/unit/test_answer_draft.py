"""codebase_qa as shipped: a draft answer on nano, written part by part when the code index has
facts for every part, checked, repaired on the supervisor's tier when rejected; no planning call
at all when the index covers every part of the question (the first searches are planned from the
question's parts, and their results are enough)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from tierflow.checks import Verdict
from tierflow.errors import SpecError
from tierflow.graphs.codebase_qa.graph import SUPERVISOR
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
from tierflow.testing import Rule, tool_reply
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


def said(text: str) -> AIMessage:
    return AIMessage(content=text)


def test_the_shipped_graph_drafts_on_nano_part_by_part_and_knows_when_it_has_enough() -> None:
    assert SUPERVISOR.answer_tier == "nano" and SUPERVISOR.part_drafts is not None
    assert SUPERVISOR.enough is not None and SUPERVISOR.first_round is not None


async def test_a_right_part_draft_is_the_answer_and_the_flagship_is_never_called(
    scripted, make_ctx, thread, qa_root
):
    nano = scripted("nano", [said("RetryPolicy is defined in pkg/retry.py:6.")])
    flag = scripted("flag", [])  # the index covers the one part: no plan, no answer on it
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "nano": nano})
    assert out["status"] == "answered" and answer_calls(out) == [("nano", None)]
    assert out["answer"]["citations"] == [{"path": "pkg/retry.py", "line": 6}]
    assert [e["reason"] for e in shortcuts(out)] == ["first_round", "enough"]
    assert [r["node"] for r in out["usage"]] == ["answer"]  # the search came from the index
    assert out["plans"][0].startswith("first round planned without a model")
    # the part's prompt is its own question and the index's facts, in plain text (no tool)
    (request,) = nano.requests
    assert request.tools == [] and "Question: Where is RetryPolicy defined?" in str(
        request.messages[-1].content
    )
    assert "pkg/retry.py:6: class RetryPolicy" in str(request.messages[-1].content)


async def test_each_part_is_drafted_on_its_own_and_the_answer_joins_them(
    scripted, make_ctx, thread, qa_root
):
    def asks(words: str) -> Any:
        return lambda messages: words in str(messages[-1].content)

    nano = scripted("nano", [
        Rule(asks("default"), said("attempts defaults to MAX_ATTEMPTS (pkg/retry.py:9).")),
        Rule(asks("Where"), said("In pkg/retry.py:6.")),
    ])  # fmt: skip
    request = "Where is RetryPolicy defined, and what is the default of its attempts parameter?"
    out = await run(make_ctx, thread, qa_root, {"nano": nano}, request=request)
    assert out["status"] == "answered" and answer_calls(out) == [("nano", None)] * 2
    assert out["answer"]["answer"].startswith("In pkg/retry.py:6. attempts defaults to")
    assert {"path": "pkg/retry.py", "line": 9} in out["answer"]["citations"]


async def test_without_index_facts_for_every_part_the_supervisor_plans_again(
    scripted, make_ctx, thread, qa_root
):
    nano = scripted("nano", [answer("pkg/retry.py", 6)])  # a whole answer: no parts to draft
    flag = scripted("flag", [decide(False), decide(True)])
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "nano": nano},
                    request="Which file mentions a backoff?")  # fmt: skip
    assert shortcuts(out) == [] and out["status"] in ("answered", "unverified")
    assert nano.requests[0].tool_names == ["final_answer"]


async def test_a_rejected_part_draft_climbs_as_part_drafts_then_whole_answers(
    scripted, make_ctx, thread, qa_root
):
    nano = scripted("nano", [said("It is defined in pkg/budget.py:1.")])
    flag = scripted("flag", [said("In pkg/budget.py:2."), answer("pkg/budget.py", 2),
                             answer("pkg/retry.py", 6)])  # fmt: skip
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "nano": nano})
    assert out["status"] == "answered"
    assert out["answer"]["citations"] == [{"path": "pkg/retry.py", "line": 6}]
    # nano's parts, the flagship's parts, then two whole answers on the flagship
    assert answer_calls(out) == [("nano", None)] + [("flagship", "verifier_rejected")] * 3
    assert len(out["answer_problems"]) == 3
    assert flag.requests[0].tools == [] and flag.requests[1].tool_names == ["final_answer"]
    # the whole answer is told what the check found
    told = str(flag.requests[1].messages[-1].content).split("problems:")[-1]
    assert "it is defined at pkg/retry.py:6" in told


async def test_a_part_draft_whose_call_fails_climbs_to_the_next_tier(
    scripted, make_ctx, thread, qa_root
):
    nano = scripted("nano", [ValueError("the model server answered 400")])
    flag = scripted("flag", [said("RetryPolicy is in pkg/retry.py:6.")])
    out = await run(make_ctx, thread, qa_root, {"flagship": flag, "nano": nano})
    assert out["status"] == "answered"
    assert answer_calls(out) == [("nano", None), ("flagship", "verifier_rejected")]
    assert any(e["kind"] == "error" for e in out["events"])


async def test_all_flagship_drafts_the_parts_on_the_flagship_then_two_whole_answers(
    scripted, make_ctx, thread, qa_root
):
    flag = scripted("flag", [said("In pkg/budget.py:1."), answer("pkg/budget.py", 1),
                             answer("pkg/budget.py", 2)])  # fmt: skip
    policy = dataclasses.replace(POLICIES["all-flagship"], human=False)
    out = await run(make_ctx, thread, qa_root, {"flagship": flag}, policy=policy)
    assert out["status"] == "unverified"
    assert answer_calls(out) == [("flagship", None)] * 3


async def test_a_repair_that_repeats_the_rejected_answer_ends_the_repairs(
    scripted, make_ctx, thread, qa_root
):
    # the flagship's whole answer is its part draft word for word, rejected for the same
    # reason: a loop, so no third try is asked for (none is scripted: one would fail the test)
    repeat = {"answer": "In pkg/budget.py:1.", "citations": [{"path": "pkg/budget.py", "line": 1}]}
    flag = scripted("flag", [said("In pkg/budget.py:1."), tool_reply("final_answer", repeat)])
    policy = dataclasses.replace(POLICIES["all-flagship"], human=False)
    out = await run(make_ctx, thread, qa_root, {"flagship": flag}, policy=policy)
    assert out["status"] == "unverified" and out["answer"] == repeat
    assert answer_calls(out) == [("flagship", None)] * 2
    first, second = [e for e in out["events"] if e.get("check") == "answer"]
    assert first["reason"] == second["reason"] and "pkg/retry.py:6" in first["reason"]


def _for_a_person(answer: Any, state: Any) -> Verdict:
    return Verdict.reject("only a person can judge this", repairable=False)


@pytest.mark.parametrize(
    ("policy", "tries"),
    [
        # the draft still climbs once (the stronger tier's answer is the one that stands), and
        # the flagship is asked no repair: none could pass
        ("tiered", [("nano", None), ("flagship", "verifier_rejected")]),
        ("all-flagship", [("flagship", None)]),
    ],
)
async def test_a_rejection_no_repair_can_address_ends_the_repairs(
    scripted, make_ctx, thread, qa_root, policy: str, tries: list[Any]
):
    models = {"flagship": scripted("flag", [said("In pkg/retry.py:6.")])}  # one flagship try
    if policy == "tiered":
        models["nano"] = scripted("nano", [said("In pkg/retry.py:6.")])
    spec = dataclasses.replace(SUPERVISOR, answer_verifier=_for_a_person)
    graph = build_supervisor_graph(spec).compile(checkpointer=InMemorySaver())
    ctx = make_ctx(models, shortcuts=True,
                   policy=dataclasses.replace(POLICIES[policy], human=False))  # fmt: skip
    out = await graph.ainvoke({"request": REQUEST, "env": {"root": str(qa_root)}}, thread(),
                              context=ctx)  # fmt: skip
    assert out["status"] == "unverified" and answer_calls(out) == tries
    checked = [e for e in out["events"] if e.get("check") == "answer"]
    assert [e["repairable"] for e in checked] == [False] * len(tries)


def test_a_draft_tier_needs_a_check_to_escalate_on() -> None:
    with pytest.raises(SpecError, match="answer_tier='mini' needs an answer_verifier"):
        Supervisor(subagents=[], prompt="p", answer_schema=SUPERVISOR.answer_schema,
                   answer_prompt="a", answer_tier="mini")  # fmt: skip


def test_part_drafts_need_a_draft_tier() -> None:
    with pytest.raises(SpecError, match="part_drafts needs an answer_tier"):
        dataclasses.replace(SUPERVISOR, answer_tier=None)
