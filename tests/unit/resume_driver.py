"""Drives one phase of a codebase_qa run in its own process (for the resume-after-exit test)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from langgraph.types import RetryPolicy

from tierflow.runner import Runner
from tierflow.runtime import RunContext
from tierflow.testing import ScriptedChatModel, tool_reply

ROOT = Path(__file__).resolve().parents[2] / "tools"
SEARCH = {"subagent": "search", "task": {"query": "def fs_tools"}}
FINDINGS = {"findings": [{"path": "fs.py", "line": 1, "snippet": ""}], "summary": "found"}


def _definition() -> tuple[int, str]:
    lines = (ROOT / "fs.py").read_text().splitlines()
    number = next(i for i, text in enumerate(lines, 1) if text.startswith("def fs_tools"))
    return number, lines[number - 1]


def models(phase: str) -> dict[str, ScriptedChatModel]:
    line, code = _definition()
    findings = {**FINDINGS, "findings": [{"path": "fs.py", "line": line, "snippet": code}]}
    if phase == "start":
        flagship = [
            tool_reply(
                "decide", {"plan": "search", "delegate": [SEARCH], "done": False}, usage=(1000, 100)
            )
        ]
        # The openai profile uses native tool calling: the result comes as a `finish` call.
        mini = [tool_reply("finish", findings, usage=(500, 50))]
    else:
        flagship = [
            tool_reply("decide", {"plan": "done", "delegate": [], "done": True}, usage=(1000, 100)),
            tool_reply(
                "final_answer",
                {"answer": "in fs.py", "citations": [{"path": "fs.py", "line": 1}]},
                usage=(1000, 100),
            ),
        ]
        mini = []
    return {
        "flagship": ScriptedChatModel(script=flagship, label="flagship"),
        "mini": ScriptedChatModel(script=mini, label="mini"),
        "nano": ScriptedChatModel(script=[], label="nano"),
    }


def plain_codebase_qa() -> None:
    """The supervisor these scripts were written for: plans every turn, answers on its tier.

    As tests/unit/conftest.py does in-process (this runs in its own process): the budget
    interrupt this test resumes is the flagship's second planning turn.
    """
    import dataclasses

    import tierflow.graphs.codebase_qa  # noqa: F401  (the package re-exports its compiled graph)

    module = sys.modules["tierflow.graphs.codebase_qa.graph"]
    module.SUPERVISOR = dataclasses.replace(
        module.SUPERVISOR, answer_tier=None, enough=None, first_round=None, part_drafts=None
    )
    module.graph = module.SPEC.compile()


async def main(phase: str, data_dir: str, thread: str) -> None:
    plain_codebase_qa()
    doubles = models(phase)
    ctx = RunContext(
        profile="openai",
        models=doubles,
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,  # the scripted search does the work
    )
    runner = Runner(data_dir, context=ctx)
    if phase == "start":
        # flagship call: 1000*2.5e-6 + 100*15e-6 = 0.004; mini: 500*0.75e-6 + 50*4.5e-6 = 0.0006
        result = await runner.run(
            "codebase_qa",
            {"request": "where is fs_tools?", "env": {"root": str(ROOT)}, "budget_usd": 0.0075},
            thread_id=thread,
        )
    else:
        answers = {
            i.id: {"action": "raise", "budget_usd": 1.0}
            for i in (await runner.state(thread)).interrupts
        }
        result = await runner.resume(thread, answers)
    for model in doubles.values():
        model.assert_complete()
    print(
        json.dumps(
            {
                "interrupts": [i.value for i in result.interrupts],
                "status": result.values.get("status"),
                "answer": result.values.get("answer"),
                "results": sorted(result.values.get("results", {})),
                "usage_nodes": [u["node"] for u in result.values.get("usage", [])],
                "requests": {k: len(m.requests) for k, m in doubles.items()},
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
