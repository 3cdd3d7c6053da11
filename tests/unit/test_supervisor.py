"""Supervisor graphs: typed delegation, repair and fallback, bounds, fan-out, human escalation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import BaseModel

from tierflow.graphs.codebase_qa import build
from tierflow.nodes.subagent import Subagent
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
from tierflow.testing import Rule, tool_reply

pytestmark = pytest.mark.usefixtures("isolated_env")

REQUEST = "Where is RetryPolicy defined?"


def decide(*tasks: tuple[str, dict[str, Any]], done: bool = False, plan: str = "plan") -> Any:
    delegate = [{"subagent": name, "task": task} for name, task in tasks]
    return tool_reply("decide", {"plan": plan, "delegate": delegate, "done": done})


def answer(text: str = "see pkg/retry.py", path: str = "pkg/retry.py", line: int = 6) -> Any:
    return tool_reply("final_answer", {"answer": text, "citations": [{"path": path, "line": line}]})


def finish(result: dict[str, Any]) -> Any:
    return tool_reply("next_action", {"step": {"action": "finish", "result": result}})


def findings(path: str, line: int, snippet: str) -> dict[str, Any]:
    return {
        "findings": [{"path": path, "line": line, "snippet": snippet}],
        "summary": f"{path}:{line}",
    }


RETRY_FOUND = findings("pkg/retry.py", 6, "class RetryPolicy:")
BUDGET_FOUND = findings("pkg/budget.py", 1, "DEFAULT_BUDGET_USD = 0.05")


def asks_for(query: str) -> Any:
    """Rule matcher: the request is about ``query`` (the task is in the opening message)."""
    return lambda messages: query in str(messages[1].content)


def text(request: Any) -> str:
    return "\n".join(str(m.content) for m in request.messages)


async def run_qa(
    models: dict[str, Any],
    make_ctx: Any,
    cfg: dict[str, Any],
    root: Path,
    graph: Any = None,
    request: str = REQUEST,
    saver: Any = None,
    **ctx_kwargs: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    graph = graph or build().compile(checkpointer=saver or InMemorySaver())
    ctx = make_ctx(models, **ctx_kwargs)
    out = await graph.ainvoke({"request": request, "env": {"root": str(root)}}, cfg, context=ctx)
    return graph, ctx, out


# --- codebase QA: routing and typed payloads -----------------------------------------------


async def test_delegation_runs_typed_tasks_and_answers(scripted, make_ctx, thread, qa_root) -> None:
    flag = scripted(
        "flag",
        [
            decide(("search", {"query": "class RetryPolicy"}), plan="find the class"),
            decide(("extract", {"question": REQUEST}), plan="turn it into facts"),
            decide(done=True, plan="enough"),
            answer(),
        ],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])
    nano = scripted(
        "nano",
        [
            tool_reply(
                "finish",
                {
                    "facts": [
                        {"statement": "RetryPolicy is a class", "path": "pkg/retry.py", "line": 6}
                    ]
                },
            )
        ],
    )

    *_, out = await run_qa(
        {"flagship": flag, "mini": mini, "nano": nano}, make_ctx, thread(), qa_root
    )

    assert out["status"] == "answered"
    assert out["answer"] == {
        "answer": "see pkg/retry.py",
        "citations": [{"path": "pkg/retry.py", "line": 6}],
    }
    assert list(out["results"]) == ["t1.1-search", "t2.1-extract"]
    search = out["results"]["t1.1-search"]
    # the payload was validated as SearchTask: the default glob is filled in
    assert search["task"] == {"query": "class RetryPolicy", "file_glob": "*.py"}
    assert '"file_glob": "*.py"' in text(mini.requests[0])
    assert (search["status"], search["tier"], search["output"]) == ("done", "mini", RETRY_FOUND)
    assert "class RetryPolicy:" in text(nano.requests[0])  # extract sees finished results
    assert out["plans"] == ["find the class", "turn it into facts", "enough"]
    first, *_, last = flag.requests
    assert first.tool_names == ["decide"] and first.tool_choice == "decide"
    assert "- search (tier mini" in text(first) and "- extract (tier nano" in text(first)
    assert "Results so far" in text(flag.requests[1]) and "t1.1-search" in text(flag.requests[1])
    assert last.tool_choice == "final_answer"


async def test_invalid_delegation_is_repaired_once_then_falls_back(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [
            decide(("search", {"file_glob": "*.py"})),  # no query: not a SearchTask
            decide(("browse", {"url": "x"})),  # no such subagent
            decide(done=True),
            answer(),
        ],
    )
    mini = scripted("mini", [Rule(asks_for('"query": "RetryPolicy"'), finish(RETRY_FOUND))])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    assert "previous decision was invalid" not in text(flag.requests[0])
    assert "Your previous decision was invalid" in text(flag.requests[1])
    fallback = [e for e in out["events"] if e["kind"] == "supervisor_fallback"]
    assert len(fallback) == 1 and fallback[0]["tasks"] == 1
    assert "subagent" in fallback[0]["reason"]
    assert out["results"]["t1.1-search"]["task"] == {"query": "RetryPolicy", "file_glob": "*.py"}
    assert out["status"] == "answered"


async def test_a_citation_of_a_missing_line_moves_to_the_definition(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [decide(("search", {"query": "class RetryPolicy"})), decide(done=True), answer(line=99)],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    # The answer names the right file; its line did not exist, so the citation moved to where
    # RetryPolicy is defined, with no second model call.
    assert out["status"] == "answered"
    assert out["answer"]["citations"] == [{"path": "pkg/retry.py", "line": 6}]
    assert not out.get("answer_problems")


async def test_an_answer_naming_the_wrong_file_is_repaired_by_the_model(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [
            decide(("search", {"query": "class RetryPolicy"})),
            decide(done=True),
            answer(text="see pkg/budget.py", path="pkg/budget.py", line=1),
            answer(line=6),
        ],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    assert out["status"] == "answered"
    assert out["answer"]["citations"] == [{"path": "pkg/retry.py", "line": 6}]
    problem = "no cited line defines RetryPolicy; it is defined at pkg/retry.py:6"
    assert out["answer_problems"] == [problem]
    assert f"Your previous answer had problems: {problem}" in text(flag.requests[3])


async def test_answer_still_wrong_after_its_repair_is_kept_as_unverified(
    scripted, make_ctx, thread, qa_root
) -> None:
    wrong = answer(text="see pkg/budget.py", path="#/$defs/Citation", line=238)
    flag = scripted(
        "flag",
        [decide(("search", {"query": "class RetryPolicy"})), decide(done=True), wrong, wrong],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    assert out["status"] == "unverified"  # not "answered": its claim does not hold
    assert out["__interrupt__"][0].value["kind"] == "answer_review"  # attended: a human decides
    assert out["answer"]["citations"] == [{"path": "#/$defs/Citation", "line": 238}]
    assert len(out["answer_problems"]) == 2
    assert all("#/$defs/Citation:238 does not exist" in p for p in out["answer_problems"])
    assert all("RetryPolicy is not defined" in p or "defines RetryPolicy" in p
               for p in out["answer_problems"])  # fmt: skip


async def test_done_before_any_work_falls_back_to_a_search(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted("flag", [decide(done=True), decide(done=True), answer()])
    mini = scripted("mini", [Rule(asks_for('"query": "RetryPolicy"'), finish(RETRY_FOUND))])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    (fallback,) = [e for e in out["events"] if e["kind"] == "supervisor_fallback"]
    assert fallback["reason"] == "finished before delegating any work"
    assert out["results"]["t1.1-search"]["output"] == RETRY_FOUND
    assert out["status"] == "answered"


async def test_supervisor_model_error_fails_the_run(scripted, make_ctx, thread, qa_root) -> None:
    flag = scripted("flag", [ValueError("refused")])

    *_, out = await run_qa({"flagship": flag}, make_ctx, thread(), qa_root)

    assert out["status"] == "failed"
    assert out["usage"][0]["error"] == "ValueError: refused"
    assert "ValueError: refused" in out["events"][-1]["error"]


# --- bounds: max_turns and repeated delegations --------------------------------------------


class Note(BaseModel):
    text: str


class Echo(BaseModel):
    echoed: str


class Reply(BaseModel):
    answer: str


ECHO = Subagent(
    name="echo",
    description="repeats a text",
    tier="nano",
    task_schema=Note,
    output_schema=Echo,
    prompt="Repeat the text.",
)


def echo_graph(**kwargs: Any) -> Any:
    spec = Supervisor(
        subagents=[ECHO],
        prompt="Delegate echo tasks.",
        answer_schema=Reply,
        answer_prompt="Answer.",
        **kwargs,
    )
    return build_supervisor_graph(spec).compile(checkpointer=InMemorySaver())


async def run_echo(
    graph: Any, models: dict[str, Any], make_ctx: Any, thread: Any
) -> dict[str, Any]:
    return await graph.ainvoke({"request": "echo things"}, thread(), context=make_ctx(models))


def echoed(*texts: str) -> list[Any]:
    return [Rule(asks_for(f'"text": "{t}"'), tool_reply("finish", {"echoed": t})) for t in texts]


async def test_max_turns_bounds_the_planning(scripted, make_ctx, thread) -> None:
    flag = scripted(
        "flag",
        [
            decide(("echo", {"text": "a"})),
            decide(("echo", {"text": "b"})),
            tool_reply("final_answer", {"answer": "a b"}),
        ],
    )
    nano = scripted("nano", echoed("a", "b"))

    out = await run_echo(
        echo_graph(max_turns=2), {"flagship": flag, "nano": nano}, make_ctx, thread
    )

    assert out["status"] == "answered" and out["answer"] == {"answer": "a b"}
    assert "turn" not in out  # a loop counter, not a result
    assert out["plans"] == ["plan", "plan"]
    assert [r.tool_choice for r in flag.requests] == ["decide", "decide", "final_answer"]
    assert [e["kind"] for e in out["events"] if e["kind"] == "turn_limit"] == ["turn_limit"]
    assert list(out["results"]) == ["t1.1-echo", "t2.1-echo"]


async def test_repeated_delegation_is_not_dispatched_twice(scripted, make_ctx, thread) -> None:
    flag = scripted(
        "flag",
        [
            decide(("echo", {"text": "a"})),
            decide(("echo", {"text": "a"}), ("echo", {"text": "b"})),
            decide(("echo", {"text": "b"})),
            tool_reply("final_answer", {"answer": "done"}),
        ],
    )
    nano = scripted("nano", echoed("a", "b"))

    out = await run_echo(
        echo_graph(max_turns=10), {"flagship": flag, "nano": nano}, make_ctx, thread
    )

    assert out["status"] == "answered"
    assert len(nano.requests) == 2
    assert list(out["results"]) == ["t1.1-echo", "t2.2-echo"]
    loops = [e["repeats"] for e in out["events"] if e["kind"] == "loop_detected"]
    assert loops == [1, 1]
    assert [r.tool_choice for r in flag.requests] == ["decide"] * 3 + ["final_answer"]


async def test_done_after_results_goes_straight_to_the_answer(scripted, make_ctx, thread) -> None:
    flag = scripted(
        "flag",
        [
            decide(("echo", {"text": "a"})),
            decide(("echo", {"text": "ignored"}), done=True),
            tool_reply("final_answer", {"answer": "a"}),
        ],
    )
    nano = scripted("nano", echoed("a"))

    out = await run_echo(echo_graph(), {"flagship": flag, "nano": nano}, make_ctx, thread)

    assert out["answer"] == {"answer": "a"}
    assert list(out["results"]) == ["t1.1-echo"]
    assert [r.tool_choice for r in flag.requests] == ["decide", "decide", "final_answer"]


async def test_done_before_any_results_still_runs_the_delegations(
    scripted, make_ctx, thread
) -> None:
    flag = scripted(
        "flag",
        [
            decide(("echo", {"text": "a"}), done=True),
            decide(done=True),
            tool_reply("final_answer", {"answer": "a"}),
        ],
    )
    nano = scripted("nano", echoed("a"))

    out = await run_echo(echo_graph(), {"flagship": flag, "nano": nano}, make_ctx, thread)

    assert list(out["results"]) == ["t1.1-echo"]
    assert out["answer"] == {"answer": "a"}


# --- parallel fan-out ----------------------------------------------------------------------

QUERIES = ("class RetryPolicy", "MAX_ATTEMPTS", "DEFAULT_BUDGET_USD")
FOUND = {
    "class RetryPolicy": RETRY_FOUND,
    "MAX_ATTEMPTS": findings("pkg/retry.py", 3, "MAX_ATTEMPTS = 3"),
    "DEFAULT_BUDGET_USD": BUDGET_FOUND,
}


UNLIMITED = """
[profiles.parallel]
ladder = ["nano", "mini", "flagship"]
[profiles.parallel.tiers.nano]
model = "n"
base_url = "http://127.0.0.1:9/v1"
price = { input = 0.2, cached_input = 0.02, output = 1.25 }
tool_mode = "forced"
[profiles.parallel.tiers.mini]
model = "m"
base_url = "http://127.0.0.1:9/v1"
price = { input = 0.75, cached_input = 0.075, output = 4.5 }
tool_mode = "forced"
[profiles.parallel.tiers.flagship]
model = "f"
base_url = "http://127.0.0.1:9/v1"
price = { input = 2.5, cached_input = 0.25, output = 15.0 }
tool_mode = "forced"
"""


async def fan_out(
    scripted: Any, make_ctx: Any, thread: Any, root: Path, profile: str = "parallel"
) -> tuple[Any, dict[str, Any]]:
    """Three search tasks; by default on a profile with no concurrency limit."""
    config = root.parent / "parallel.toml"
    config.write_text(UNLIMITED)
    flag = scripted(
        "flag", [decide(*[("search", {"query": q}) for q in QUERIES]), decide(done=True), answer()]
    )
    mini = scripted(
        "mini", [Rule(asks_for(q), finish(FOUND[q])) for q in reversed(QUERIES)], delay_s=0.3
    )
    models = {"flagship": flag, "mini": mini}
    *_, out = await run_qa(
        models, make_ctx, thread(), root, profile=profile, config_file=str(config)
    )
    return mini, out


async def test_fan_out_runs_subagents_concurrently(scripted, make_ctx, thread, qa_root) -> None:
    mini, out = await fan_out(scripted, make_ctx, thread, qa_root)

    assert len(mini.requests) == 3
    starts = [r.started_at for r in mini.requests]
    finishes = [r.finished_at for r in mini.requests]
    assert max(starts) < min(finishes)  # every request was in flight at the same time
    assert out["status"] == "answered"


async def test_local_profile_runs_one_request_at_a_time(
    scripted, make_ctx, thread, qa_root
) -> None:
    # The local tiers share the CPU (concurrency_group "local-cpu", max_concurrency 1).
    mini, out = await fan_out(scripted, make_ctx, thread, qa_root, profile="local")

    spans = sorted((r.started_at, r.finished_at) for r in mini.requests)
    assert len(spans) == 3
    assert all(end <= nxt_start for (_, end), (nxt_start, _) in zip(spans, spans[1:], strict=False))
    assert out["status"] == "answered"


async def test_fan_out_merges_results_deterministically(
    scripted, make_ctx, thread, qa_root
) -> None:
    _, first = await fan_out(scripted, make_ctx, thread, qa_root)
    _, second = await fan_out(scripted, make_ctx, thread, qa_root)

    assert (
        list(first["results"])
        == sorted(first["results"])
        == ["t1.1-search", "t1.2-search", "t1.3-search"]
    )
    assert first["results"] == second["results"]
    assert [first["results"][f"t1.{i}-search"]["output"] for i in (1, 2, 3)] == [
        FOUND[q] for q in QUERIES
    ]


# --- human escalation keeps finished work ---------------------------------------------------

INVALID = tool_reply(
    "next_action", {"step": {"action": "finish", "result": {"summary": "no list"}}}
)


def escalation_models(scripted: Any, flag_tail: list[Any] = ()) -> dict[str, Any]:
    """Two searches: RetryPolicy finishes on mini, the budget one is invalid on every tier."""
    budget = asks_for("DEFAULT_BUDGET_USD")
    flag = scripted(
        "flag",
        [
            decide(
                ("search", {"query": "class RetryPolicy"}),
                ("search", {"query": "DEFAULT_BUDGET_USD"}),
            ),
            Rule(budget, INVALID),
            Rule(budget, INVALID),
            *flag_tail,
        ],
    )
    mini = scripted(
        "mini",
        [
            Rule(asks_for("class RetryPolicy"), finish(RETRY_FOUND)),
            Rule(budget, INVALID),
            Rule(budget, INVALID),
        ],
    )
    return {"flagship": flag, "mini": mini}


async def test_escalation_to_human_keeps_finished_task(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    models = escalation_models(scripted)
    cfg = thread()

    graph, _, out = await run_qa(models, make_ctx, cfg, qa_root, saver=saver)

    (intr,) = out["__interrupt__"]
    assert intr.value["kind"] == "escalation"
    assert intr.value["options"] == ["approve", "edit", "reject"]
    assert (intr.value["task_id"], intr.value["reason"]) == ("t1.2-search", "schema_validation")
    assert intr.value["task"] == {"query": "DEFAULT_BUDGET_USD", "file_glob": "*.py"}
    results = (await graph.aget_state(cfg)).values["results"]
    assert list(results) == ["t1.1-search"]
    assert results["t1.1-search"]["output"] == RETRY_FOUND


async def test_human_edit_finishes_the_run(saver, scripted, make_ctx, thread, qa_root) -> None:
    models = escalation_models(scripted, [decide(done=True), answer()])
    cfg = thread()
    graph, ctx, _ = await run_qa(models, make_ctx, cfg, qa_root, saver=saver)
    mini_calls = len(models["mini"].requests)

    out = await graph.ainvoke(
        Command(resume={"action": "edit", "value": BUDGET_FOUND}), cfg, context=ctx
    )

    assert out["status"] == "answered"
    assert len(models["mini"].requests) == mini_calls  # the finished task was not redone
    edited = out["results"]["t1.2-search"]
    assert (edited["status"], edited["tier"], edited["output"]) == ("done", "human", BUDGET_FOUND)
    assert [(e["from"], e["to"]) for e in edited["escalations"]] == [
        ("mini", "flagship"),
        ("flagship", "human"),
    ]
    assert edited["escalations"][-1]["decision"] == "edit"
    assert out["results"]["t1.1-search"]["output"] == RETRY_FOUND


async def test_a_task_paused_on_a_human_resumes_from_sqlite_without_paying_twice(
    scripted, make_ctx, qa_root, tmp_path
) -> None:
    """Its finished phases are checkpointed writes: shown while it waits, replayed on resume."""
    from tierflow.runner import Runner

    models = escalation_models(scripted, [decide(done=True), answer()])
    ctx = make_ctx(models)
    inputs = {"request": REQUEST, "env": {"root": str(qa_root)}}
    first = await Runner(tmp_path, context=ctx).run("codebase_qa", inputs, thread_id="t")
    (intr,) = first.interrupts
    assert intr.value["task_id"] == "t1.2-search" and "t1.2-search" not in first.values["results"]
    made = sum(len(m.requests) for m in models.values())
    # Every request made so far is reported, including the paused task's four (two tiers x
    # invalid twice), although its result is not in the state yet.
    waiting = await Runner(tmp_path, context=ctx).state("t")
    assert len({r["id"] for r in waiting.values["usage"]}) == len(waiting.values["usage"]) == made
    assert sum(r["task_id"] == "t1.2-search" for r in waiting.values["usage"]) == 4

    done = await Runner(tmp_path, context=ctx).resume(
        "t", {intr.id: {"action": "edit", "value": BUDGET_FOUND}}
    )

    assert done.values["status"] == "answered"
    usage = done.values["usage"]
    # Two more requests (decide, answer), none repeated; each record is in the state once.
    assert sum(len(m.requests) for m in models.values()) == made + 2 == len(usage)
    assert len({r["id"] for r in usage}) == len(usage)
    assert done.values["results"]["t1.2-search"]["tier"] == "human"


async def test_invalid_edit_is_asked_again_with_a_clear_message(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    cfg = thread()
    graph, ctx, _ = await run_qa(escalation_models(scripted), make_ctx, cfg, qa_root, saver=saver)

    out = await graph.ainvoke(
        Command(resume={"action": "edit", "value": {"findings": []}}), cfg, context=ctx
    )

    (intr,) = out["__interrupt__"]
    assert (intr.value["kind"], intr.value["task_id"]) == ("escalation", "t1.2-search")
    assert intr.value["error"].startswith("the edited result does not match Findings")
    assert "summary" in intr.value["error"]
    assert intr.value["question"].startswith(intr.value["error"])
    state = await graph.aget_state(cfg)
    assert state.next == ("search",) and list(state.values["results"]) == ["t1.1-search"]


async def test_valid_edit_after_an_invalid_one_finishes(
    scripted, make_ctx, thread, qa_root
) -> None:
    models = escalation_models(scripted, [decide(done=True), answer()])
    cfg = thread()
    graph, ctx, _ = await run_qa(models, make_ctx, cfg, qa_root)
    for bad in ({"action": "edit", "value": {"findings": []}}, {"action": "maybe"}, "edit"):
        out = await graph.ainvoke(Command(resume=bad), cfg, context=ctx)
        assert out["__interrupt__"][0].value["error"]

    out = await graph.ainvoke(
        Command(resume={"action": "edit", "value": BUDGET_FOUND}), cfg, context=ctx
    )

    assert out["status"] == "answered"
    assert out["results"]["t1.2-search"]["output"] == BUDGET_FOUND
    assert out["results"]["t1.1-search"]["output"] == RETRY_FOUND


async def test_results_dependent_subagent_waits_for_results(
    scripted, make_ctx, thread, qa_root
) -> None:
    # extract works from earlier results (task+results): asked for in turn 1, it is deferred.
    flag = scripted(
        "flag",
        [
            decide(("search", {"query": "class RetryPolicy"}), ("extract", {"question": REQUEST})),
            decide(done=True),
            answer(),
        ],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])

    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root)

    assert list(out["results"]) == ["t1.1-search"]
    assert [e["kind"] for e in out["events"] if e["kind"] == "deferred"] == ["deferred"]
    assert out["status"] == "answered"


async def test_a_search_grep_can_answer_finishes_with_no_model_call(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [decide(("search", {"query": "class RetryPolicy"})), decide(done=True), answer(line=6)],
    )
    mini = scripted("mini", [])  # never asked: grep found where RetryPolicy is defined

    *_, out = await run_qa(
        {"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root, shortcuts=True
    )

    assert out["status"] == "answered" and not mini.requests
    (result,) = out["results"].values()
    assert result["tier"] == "deterministic" and result["steps"] == 0
    assert result["output"]["findings"][0] == {
        "path": "pkg/retry.py",
        "line": 6,
        "snippet": "class RetryPolicy:",
    }
    assert [e["kind"] for e in out["events"]][:2] == ["shortcut", "task_finished"]
    assert {r["node"] for r in out["usage"]} == {"supervisor", "answer"}


async def test_a_search_grep_cannot_answer_goes_to_the_model(
    scripted, make_ctx, thread, qa_root
) -> None:
    flag = scripted(
        "flag",
        [decide(("search", {"query": "backoff"})), decide(done=True), answer(line=6)],
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])  # a phrase, not a definition: the model works

    *_, out = await run_qa(
        {"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root, shortcuts=True
    )

    assert len(mini.requests) == 1
    assert "shortcut" not in [e["kind"] for e in out["events"]]


def _wrong_answers() -> list[Any]:
    wrong = answer(text="see pkg/budget.py", path="pkg/budget.py", line=1)
    return [decide(("search", {"query": "class RetryPolicy"})), decide(done=True), wrong, wrong]


@pytest.mark.parametrize(
    ("resume", "status", "citations"),
    [
        ({"action": "approve"}, "answered", [{"path": "pkg/budget.py", "line": 1}]),
        (
            {"action": "edit", "value": {"answer": "pkg/retry.py", "citations": [
                {"path": "pkg/retry.py", "line": 6}]}},
            "answered",
            [{"path": "pkg/retry.py", "line": 6}],
        ),
        ({"action": "reject", "note": "wrong file"}, "unverified", [{"path": "pkg/budget.py", "line": 1}]),
    ],
)  # fmt: skip
async def test_a_human_decides_on_an_unverified_answer_without_a_new_model_call(
    scripted, make_ctx, thread, qa_root, resume, status, citations
) -> None:
    flag = scripted("flag", _wrong_answers())
    mini = scripted("mini", [finish(RETRY_FOUND)])
    cfg = thread()
    graph, ctx, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, cfg, qa_root)
    (pending,) = out["__interrupt__"]
    assert pending.value["kind"] == "answer_review"
    assert "RetryPolicy" in pending.value["question"] and len(pending.value["problems"]) == 2

    bad = await graph.ainvoke(Command(resume={"action": "edit", "value": {}}), cfg, context=ctx)
    assert "does not match Answer" in bad["__interrupt__"][0].value["error"]  # asked again
    done = await graph.ainvoke(Command(resume=resume), cfg, context=ctx)

    assert "__interrupt__" not in done
    assert done["status"] == status and done["answer"]["citations"] == citations
    assert len(flag.requests) == 4  # resuming re-ran only the review, not the answer call
    assert [e["action"] for e in done["events"] if e["kind"] == "human_decision"] == [
        resume["action"]
    ]


async def test_an_unattended_run_ends_unverified_without_asking(
    scripted, make_ctx, thread, qa_root
) -> None:
    from tierflow.tiers import TierPolicy

    flag = scripted("flag", _wrong_answers())
    mini = scripted("mini", [finish(RETRY_FOUND)])
    *_, out = await run_qa(
        {"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root,
        policy=TierPolicy(human=False),
    )  # fmt: skip

    assert out["status"] == "unverified" and "__interrupt__" not in out


def test_the_run_context_is_plain_data_studio_and_the_sdk_can_send() -> None:
    import json

    from pydantic import TypeAdapter

    from tierflow.runtime import POLICIES, RunContext

    schema = TypeAdapter(RunContext).json_schema()  # what langgraph dev builds for Studio
    assert {"profile", "policy", "unattended", "budget_usd"} <= set(schema["properties"])
    assert "models" not in schema["properties"] and "retry" not in schema["properties"]
    json.dumps(schema)
    sent = RunContext(**{"policy": "all-nano", "budget_usd": 0.05})  # as JSON sends it
    assert sent.policy == POLICIES["all-nano"] and sent.budget_usd == 0.05
    unattended = RunContext(**{"policy": {"name": "mine", "escalate": False}, "unattended": True})
    assert (unattended.policy.name, unattended.policy.human) == ("mine", False)
    assert unattended.policy.on_budget == "stop"
    with pytest.raises(ValueError, match="unknown policy 'cheap': choose from tiered"):
        RunContext(policy="cheap")
    with pytest.raises(ValueError, match="budget_usd must be positive"):
        RunContext(budget_usd=0)


async def test_a_context_budget_applies_when_the_input_sets_none(saver, scripted, make_ctx) -> None:

    from tests.unit.test_budget_runs import tickets
    from tierflow.graphs.triage import build

    ctx = make_ctx({}, profile="openai", budget_usd=1e-7)
    graph = build().compile(checkpointer=saver)
    out = await graph.ainvoke(
        {"tickets": tickets(1)}, {"configurable": {"thread_id": "ctx-budget"}}, context=ctx
    )
    # The tiny context budget stopped the run before any request (unattended would stop too;
    # attended, the gate interrupts).
    assert out.get("budget_usd") == 1e-7
    assert not [r for r in out.get("usage") or [] if r["error"] is None]


@pytest.mark.parametrize(
    ("resume", "status", "line"),
    [
        ({"decisions": [{"type": "approve"}]}, "answered", 6),
        ({"decisions": [{"type": "reject", "message": "not this"}]}, "rejected", 6),
        (
            {"decisions": [{"type": "edit", "edited_action": {"name": "final_answer", "args": {
                "answer": "RetryPolicy is in pkg/retry.py",
                "citations": [{"path": "pkg/retry.py", "line": 7}]}}}]},
            "answered",
            7,
        ),
    ],
)  # fmt: skip
async def test_a_declared_approval_step_speaks_langchains_hitl_shape(
    saver, scripted, make_ctx, thread, qa_root, resume, status, line
) -> None:
    """Supervisor(review="always"): every answer waits for a human, no outer graph needed."""
    import dataclasses

    from tierflow.graphs.codebase_qa import SUPERVISOR
    from tierflow.nodes.supervisor import build_supervisor_graph

    flag = scripted(
        "flag", [decide(("search", {"query": "backoff"})), decide(done=True), answer(line=6)]
    )
    mini = scripted("mini", [finish(RETRY_FOUND)])
    spec = dataclasses.replace(SUPERVISOR, review="always")
    graph = build_supervisor_graph(spec).compile(checkpointer=saver)
    cfg = thread()
    _, ctx, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, cfg, qa_root, graph)

    (pending,) = out["__interrupt__"]
    request = pending.value
    assert request["kind"] == "answer_review" and "needs your approval" in request["question"]
    (action,) = request["action_requests"]
    assert action["name"] == "final_answer" and action["args"]["citations"][0]["line"] == 6
    assert request["review_configs"] == [
        {"action_name": "final_answer", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    done = await graph.ainvoke(Command(resume=resume), cfg, context=ctx)
    assert done["status"] == status and done["answer"]["citations"][0]["line"] == line
    assert len(flag.requests) == 3  # the review asked no model


async def test_a_declared_approval_is_skipped_when_there_is_no_answer(
    saver, scripted, make_ctx, thread, qa_root
) -> None:
    import dataclasses

    from tierflow.graphs.codebase_qa import SUPERVISOR
    from tierflow.nodes.supervisor import build_supervisor_graph
    from tierflow.testing import TransientError

    flag = scripted("flag", [TransientError("down")] * 3)  # every attempt fails: no plan
    spec = dataclasses.replace(SUPERVISOR, review="always")
    graph = build_supervisor_graph(spec).compile(checkpointer=saver)
    _, _, out = await run_qa({"flagship": flag}, make_ctx, thread(), qa_root, graph)
    assert out["status"] == "failed" and "__interrupt__" not in out


async def test_a_first_round_runs_before_any_planning_call_and_the_supervisor_plans_after(
    scripted, make_ctx, thread, qa_root
) -> None:
    import dataclasses

    from tierflow.graphs.codebase_qa import SUPERVISOR, SearchTask

    planned = dataclasses.replace(
        SUPERVISOR, first_round=lambda state: [("search", SearchTask(query="RetryPolicy"))]
    )
    flag = scripted("flag", [decide(done=True, plan="enough"), answer()])
    graph = build_supervisor_graph(planned).compile(checkpointer=InMemorySaver())
    *_, out = await run_qa({"flagship": flag}, make_ctx, thread(), qa_root, graph, shortcuts=True)

    assert out["status"] == "answered" and list(out["results"]) == ["t1.1-search"]
    # the search ran before the flagship's first call, which saw its results (turn 2 of 3)
    assert "t1.1-search" in text(flag.requests[0]) and "Turn 2 of 3" in text(flag.requests[0])
    assert out["plans"][0].startswith("first round planned without a model: search")
    assert [e["reason"] for e in out["events"] if e["kind"] == "shortcut"
            and e.get("node") == "supervisor"] == ["first_round"]  # fmt: skip
    # with shortcuts off (an eval of the tiers themselves), the supervisor plans from turn 1
    flag = scripted("flag", [decide(("search", {"query": "RetryPolicy"})), decide(done=True),
                             answer()])  # fmt: skip
    mini = scripted("mini", [finish(RETRY_FOUND)])
    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root, graph)
    assert "Turn 1 of 3" in text(flag.requests[0]) and out["status"] == "answered"


async def test_an_empty_first_round_leaves_the_plan_to_the_supervisor(
    scripted, make_ctx, thread, qa_root
) -> None:
    import dataclasses

    from tierflow.graphs.codebase_qa import SUPERVISOR

    planned = dataclasses.replace(SUPERVISOR, first_round=lambda state: [])
    flag = scripted("flag", [decide(("search", {"query": "class RetryPolicy"})),
                             decide(done=True), answer()])  # fmt: skip
    mini = scripted("mini", [finish(RETRY_FOUND)])
    graph = build_supervisor_graph(planned).compile(checkpointer=InMemorySaver())
    *_, out = await run_qa({"flagship": flag, "mini": mini}, make_ctx, thread(), qa_root, graph)
    assert out["status"] == "answered" and "Turn 1 of 3" in text(flag.requests[0])
