"""The README's authoring example runs as written: three subagents, a verifier that escalates,
a budget and an approval step, driven by scripted models on every tier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tierflow.testing import ScriptedChatModel, answer_now, delegate, final_answer, result

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> dict[str, Any]:
    """Execute the python block of "## Authoring a graph"; its namespace."""
    section = README.read_text().split("## Authoring a graph", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "the authoring section has no python block"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(README), "exec"), namespace)  # noqa: S102 - our README
    return namespace


def test_the_example_fits_in_about_25_lines() -> None:
    section = README.read_text().split("## Authoring a graph", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    lines = [line for line in code.group(1).splitlines() if line.strip()]
    assert len(lines) <= 27, len(lines)


async def test_the_readme_graph_escalates_spends_within_budget_and_waits_for_approval() -> None:
    from tierflow.runtime import RunContext

    ns = readme_example()
    graph = ns["builder"].compile(checkpointer=InMemorySaver())
    claim = {"text": "Water boils at 100 C at sea level."}
    answer = {"summary": "The claim holds."}
    models = {
        "flagship": ScriptedChatModel(
            label="flagship",
            script=[
                delegate(("check", claim)),
                result({"supported": True, "reason": "standard pressure"}),  # the escalated check
                answer_now(),
                final_answer(answer),
            ],
        ),  # fmt: skip
        # mini gives a verdict without a reason: the verifier sends the task to the flagship
        "mini": ScriptedChatModel(
            label="mini", script=[result({"supported": True, "reason": " "})]
        ),
        "nano": ScriptedChatModel(label="nano", script=[]),
    }
    ctx = RunContext(profile="openai", models=models, shortcuts=False)
    cfg = {"configurable": {"thread_id": "readme"}}
    out = await graph.ainvoke({"request": claim["text"], "budget_usd": 0.05}, cfg, context=ctx)

    (pending,) = out["__interrupt__"]
    assert pending.value["action_requests"][0]["args"] == answer
    final = await graph.ainvoke(
        Command(resume={"decisions": [{"type": "approve"}]}), cfg, context=ctx
    )
    assert final["status"] == "answered" and final["answer"] == answer
    check = final["results"]["t1.1-check"]
    assert check["tier"] == "flagship" and check["output"]["reason"] == "standard pressure"
    assert [e["reason"] for e in check["escalations"]] == ["verifier_rejected"]
    assert 0 < sum(r["cost_usd"] for r in final["usage"]) <= 0.05
    for model in models.values():
        model.assert_complete()
