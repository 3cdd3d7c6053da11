"""TEST DOUBLE: codebase QA's scripted oracle, planning, searching and answering from the item."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from tierflow.graphs.codebase_qa._questions import parse_parts
from tierflow.graphs.codebase_qa.suite import langgraph_root
from tierflow.oracle import USAGE, finish, reply, right, task_of
from tierflow.protocol import ToolName
from tierflow.testing import text_reply

__all__ = ["oracle"]


def _line_of(path: str, contains: str, near: int) -> int:
    lines = (langgraph_root() / path).read_text(errors="replace").splitlines()
    hits = [n for n, text in enumerate(lines, 1) if contains.strip() in text]
    return min(hits, key=lambda n: abs(n - near)) if hits else near


def oracle(
    items: list[dict[str, Any]], tier: str, accuracy: Mapping[str, float]
) -> Callable[[list[BaseMessage]], AIMessage]:
    """A responder for ``tier``: the supervisor's plan, the search findings and the answer."""
    by_question = {i["question"]: i for i in items}
    by_query = {i["evidence"][0]["contains"]: i for i in items}
    # A part's own prompt (the answer drafted part by part) names the part, not the question.
    by_part = {p.text: i for i in items for p in parse_parts(i["question"])}

    def item_of(messages: list[BaseMessage]) -> dict[str, Any]:
        text = str(messages[-1].content)
        match = re.search(r"Request:\n(.*?)(?:\n\n|$)", text, re.S)
        return by_question[match.group(1).strip()] if match else items[0]

    def cites(item: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"path": e["path"], "line": _line_of(e["path"], e["contains"], e["start_line"])}
                for e in item["evidence"]]  # fmt: skip

    def respond(messages: list[BaseMessage]) -> AIMessage:
        system = str(messages[0].content)
        if system.startswith("You answer questions about a source tree"):
            item = item_of(messages)
            if "Results so far" in str(messages[-1].content):
                return reply(
                    ToolName.DECIDE,
                    {"plan": "The findings answer it.", "delegate": [], "done": True},
                )
            task = {"query": item["evidence"][0]["contains"], "file_glob": "*.py"}
            return reply(ToolName.DECIDE, {"plan": "Find the evidence.", "done": False,
                                     "delegate": [{"subagent": "search", "task": task}]})  # fmt: skip
        part = re.search(r"\n\nQuestion: (.*)\?\nAnswer:$", str(messages[-1].content), re.S)
        if part is not None:  # one part's sentence, citing where it says (the first evidence)
            item = by_part.get(part.group(1), items[0])
            answer = item["reference_answer"] if right(item["id"], tier, accuracy) else "unknown"
            where = cites(item)[0]
            return text_reply(f"{answer} ({where['path']}:{where['line']})", usage=USAGE)
        if system.startswith("Answer every part of the question"):
            item = item_of(messages)
            answer = item["reference_answer"] if right(item["id"], tier, accuracy) else "unknown"
            return reply("final_answer", {"answer": answer, "citations": cites(item)})
        schema, task = task_of(messages)
        if schema == "SearchTask":
            item = by_query.get(task["query"], items[0])
            found = [
                {**c, "snippet": e["contains"]}
                for c, e in zip(cites(item), item["evidence"], strict=True)
            ]
            return finish(messages, {"findings": found, "summary": "found it"})
        return finish(messages, {"facts": []})

    return respond
