"""Deterministic scripted tiers for a codebase_qa demo run (notebooks, run-view and tracing tests).

The script exercises the interesting paths of a tiered run without any network: the flagship
delegates a search, the mini subagent greps, reports a wrong snippet, is rejected by the verifier
and escalated to the flagship tier, which finishes the task; nano then drafts the answer.

Example:
    >>> from pathlib import Path
    >>> from tierflow.demo import demo_models
    >>> models = demo_models(Path(__file__).resolve().parents[1] / "tools")  # doctest: +SKIP
    >>> sorted(models)  # doctest: +SKIP
    ['flagship', 'mini', 'nano']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from tierflow.errors import InputError
from tierflow.testing import Rule, ScriptedChatModel, tool_reply

__all__ = [
    "DemoTarget",
    "find_target",
    "demo_question",
    "demo_models",
    "answer_models",
    "DEMO_PROFILE",
]

DEMO_PROFILE = "openai"
"""Profile the demo runs on: native tool calling and non-zero prices (so costs show)."""


@dataclass(frozen=True)
class DemoTarget:
    """Where the demo's answer is: the first ``.py`` line under the root containing ``needle``."""

    needle: str
    path: str
    line: int
    text: str


def find_target(root: Path | str, needle: str = "def fs_tools") -> DemoTarget:
    """Locate ``needle`` under ``root`` (sorted walk of ``*.py``); raises InputError if absent."""
    base = Path(root)
    for file in sorted(base.rglob("*.py")):
        if "__pycache__" in file.parts:
            continue
        for number, text in enumerate(file.read_text(errors="replace").splitlines(), start=1):
            if needle in text:
                return DemoTarget(needle, file.relative_to(base).as_posix(), number, text.strip())
    raise InputError(f"'{needle}' is not in any .py file under {base}; pass a needle that is")


def demo_question(target: DemoTarget) -> str:
    """The question the demo scripts answer."""
    return f"Where is `{target.needle}` defined?"


def _part_answer(target: DemoTarget) -> AIMessage:
    """The answer as codebase_qa drafts it: one plain sentence for the question's one part."""
    text = f"`{target.needle}` is defined in {target.path}:{target.line}."
    reply = AIMessage(content=text)
    reply.usage_metadata = {"input_tokens": 300, "output_tokens": 20, "total_tokens": 320}
    return reply


def _final_answer(target: DemoTarget) -> AIMessage:
    return tool_reply(
        "final_answer",
        {
            "answer": f"In {target.path}, line {target.line}.",
            "citations": [{"path": target.path, "line": target.line}],
        },
        usage=(1200, 80),
    )


def demo_models(root: Path | str, needle: str = "def fs_tools") -> dict[str, ScriptedChatModel]:
    """Scripted flagship/mini/nano models for one codebase_qa run on ``root`` (openai profile).

    Calls, in order: flagship ``decide`` (search) -> mini ``grep`` -> mini ``finish`` with a wrong
    snippet (verifier rejects, escalation mini -> flagship) -> flagship ``finish`` -> nano
    answers the question's one part in a sentence (codebase_qa drafts its answer on nano, part
    by part; the code index covers the question, so no second planning turn). Run them with
    ``RunContext(shortcuts=False)``: the scripted mini does the search grep could shortcut.
    """
    target = find_target(root, needle)
    good = {
        "findings": [{"path": target.path, "line": target.line, "snippet": target.text}],
        "summary": f"{target.needle} is defined in {target.path}",
    }
    wrong = {
        "findings": [{"path": target.path, "line": target.line, "snippet": "no such code"}],
        "summary": "guessed",
    }
    search = {"subagent": "search", "task": {"query": target.needle}}
    flagship = [
        tool_reply(
            "decide",
            {"plan": "search for it", "delegate": [search], "done": False},
            usage=(1000, 100),
        ),
        tool_reply("finish", good, usage=(900, 60)),
    ]
    mini = [
        tool_reply(
            "grep", {"pattern": target.needle, "path": ".", "glob": "*.py"}, usage=(600, 30)
        ),
        tool_reply("finish", wrong, usage=(800, 50)),
    ]
    return {
        "flagship": ScriptedChatModel(script=flagship, label="demo-flagship"),
        "mini": ScriptedChatModel(script=mini, label="demo-mini"),
        "nano": ScriptedChatModel(script=[_part_answer(target)], label="demo-nano"),
    }


def answer_models(root: Path | str, tier: str, needle: str = "def fs_tools") -> dict[str, Any]:
    """Models for re-running only the answer step on ``tier`` (the other tiers refuse requests).

    The tier answers as codebase_qa asks it to: a sentence for the question's one part when its
    answer is drafted part by part, else the whole ``final_answer``.
    """
    target = find_target(root, needle)
    models: dict[str, Any] = {
        t: ScriptedChatModel(script=[], label=f"demo-{t}") for t in ("nano", "mini", "flagship")
    }

    def drafted(messages: list[Any]) -> bool:  # a part's prompt, not a whole answer's
        return str(messages[-1].content).startswith("Facts from the code:")

    script = [Rule(drafted, _part_answer(target)), _final_answer(target)]
    models[tier] = ScriptedChatModel(script=script, label=f"demo-{tier}")
    return models
