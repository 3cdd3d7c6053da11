"""Codebase QA: the flagship plans, mini subagents search a sandboxed tree, nano extracts facts.

Input: ``{"request": "<question>", "env": {"root": "<source tree>"}, "budget_usd": 0.05}``.
Output: ``answer`` = ``{"answer": ..., "citations": [{"path", "line"}]}``; every citation is
checked against the files (the answer is repaired once when one does not hold).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from tierflow.nodes.grounding import check, locate
from tierflow.nodes.subagent import ContextPolicy, Subagent
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
from tierflow.tools import fs_tools

__all__ = [
    "SUPERVISOR",
    "build",
    "graph",
    "SearchTask",
    "Findings",
    "ExtractTask",
    "Facts",
    "Answer",
]


class SearchTask(BaseModel):
    """What to look for in the source tree."""

    query: str = Field(description="a name, identifier or phrase to find, e.g. 'class RetryPolicy'")
    file_glob: str = Field(default="*.py", description="which files to search, e.g. '*.py'")


class Finding(BaseModel):
    """A place in the code that matters for the question."""

    path: str = Field(description="file path relative to the root, as the tools print it")
    line: int = Field(ge=1, description="1-based line number")
    snippet: str = Field(description="the code on that line, copied exactly")


class Findings(BaseModel):
    """Result of a search task."""

    findings: list[Finding] = Field(
        description="the most relevant places, best first", max_length=8
    )
    summary: str = Field(description="one sentence: what was found")


class ExtractTask(BaseModel):
    """Turn the findings so far into facts that answer the question."""

    question: str


class Fact(BaseModel):
    """One statement supported by one line of code."""

    statement: str
    path: str
    line: int = Field(ge=1)


class Facts(BaseModel):
    """Result of an extraction task."""

    facts: list[Fact] = Field(max_length=8)


class Citation(BaseModel):
    """Where the answer's evidence is."""

    path: str
    line: int = Field(ge=1)


class Answer(BaseModel):
    """The final answer with file:line citations."""

    answer: str = Field(description="a direct, short answer")
    citations: list[Citation] = Field(description="file:line evidence for the answer", min_length=1)


def normalize_findings(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> BaseModel:
    """Snap each finding to the line its quoted code is on; drop ones that quote nothing real.

    When no finding can be grounded they are all kept, so the verifier explains the problem.
    """
    assert isinstance(out, Findings)
    root = env.get("root", ".")
    placed = [locate(root, (f.path, f.line, f.snippet)) for f in out.findings]
    grounded = [Finding(path=p, line=n, snippet=c or "") for p, n, c in filter(None, placed)]
    if out.findings and not grounded:
        return out
    return out.model_copy(update={"findings": grounded})


def verify_findings(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> str | None:
    """Findings must quote real lines, and mention the query when the tree contains it."""
    assert isinstance(task, SearchTask) and isinstance(out, Findings)
    problem = check(env.get("root", "."), [(f.path, f.line, f.snippet) for f in out.findings])
    if problem:
        return problem
    defined = _definitions(task, env)
    places = {(f.path, f.line) for f in out.findings}
    if defined and not any(_place(line) in places for line in defined):
        return (
            f"no finding is where {task.query!r} is defined; it is defined at "
            f"{'; '.join(defined[:3])}. Include that line"
        )
    query = task.query.lower()
    if any(query in f.snippet.lower() for f in out.findings):
        return None
    hits = _grep_hits(task, env)
    if hits:
        return (
            f"no finding contains {task.query!r}, but these lines do: {'; '.join(hits[:3])}. "
            "Report those"
        )
    return None


def _grep_lines(env: Mapping[str, Any], pattern: str, glob: str) -> list[str]:
    grep = {t.name: t for t in _tools(env)}["grep"]
    try:
        text = str(grep.invoke({"pattern": pattern, "glob": glob}))
    except ToolException:
        return []
    return [ln for ln in text.splitlines() if not ln.startswith(("no matches", "note:", "..."))]


def _definitions(task: SearchTask, env: Mapping[str, Any]) -> list[str]:
    """Where the query's identifier is defined: def/class lines first, then assignments."""
    name = task.query.split()[-1] if task.query.split() else ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return []
    defs = _grep_lines(env, rf"\b(def|class)\s+{name}\b", task.file_glob)
    # `name = ...` or `name: T = ...`; PEP 8 keyword arguments (`name=value`) have no spaces.
    assigns = _grep_lines(env, rf"^\s*{name}(\s+=\s|\s*:[^=]+=)", task.file_glob)
    return defs + [ln for ln in assigns if ln not in defs]


def _place(grep_line: str) -> tuple[str, int]:
    """``path:LINE: text`` (grep output) -> (path, LINE)."""
    path, number, _ = grep_line.split(":", 2)
    return path, int(number)


def _grep_hits(task: SearchTask, env: Mapping[str, Any]) -> list[str]:
    """Lines matching the query, definitions first (what a code search should surface)."""
    first = _definitions(task, env)
    rest = _grep_lines(env, re.escape(task.query), task.file_glob)
    return first + [ln for ln in rest if ln not in first]


def verify_facts(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> str | None:
    """Every fact must cite an existing file:line."""
    assert isinstance(out, Facts)
    return check(env.get("root", "."), [(f.path, f.line, None) for f in out.facts])


def normalize_answer(answer: BaseModel, state: Mapping[str, Any]) -> BaseModel:
    """Drop citations of lines that do not exist, as long as at least one real one is left."""
    assert isinstance(answer, Answer)
    root = (state.get("env") or {}).get("root", ".")
    placed = [locate(root, (c.path, c.line, None)) for c in answer.citations]
    real = [Citation(path=p, line=n) for p, n, _ in filter(None, placed)]
    return answer.model_copy(update={"citations": real}) if real else answer


def verify_answer(answer: BaseModel, state: Mapping[str, Any]) -> str | None:
    """Every citation must point at an existing line of the tree."""
    assert isinstance(answer, Answer)
    root = (state.get("env") or {}).get("root", ".")
    return check(root, [(c.path, c.line, None) for c in answer.citations])


def _tools(env: Mapping[str, Any]) -> list[Any]:
    return fs_tools(env.get("root", "."))


def prefetch_grep(task: BaseModel, env: Mapping[str, Any]) -> str:
    """Grep the task's query before the first model step (free, deterministic evidence)."""
    assert isinstance(task, SearchTask)
    defined = _definitions(task, env)
    mentions = [ln for ln in _grep_lines(env, task.query, task.file_glob) if ln not in defined]
    parts = []
    if defined:
        parts.append(f"Where {task.query!r} is defined:\n" + "\n".join(defined[:10]))
    if mentions:
        parts.append(f"Other lines mentioning {task.query!r}:\n" + "\n".join(mentions[:20]))
    return "\n\n".join(parts) or f"grep({task.query!r}) found no lines."


SEARCH = Subagent(
    name="search",
    description="searches the source tree with list_files/grep/read_file and reports file:line findings",
    tier="mini",
    task_schema=SearchTask,
    output_schema=Findings,
    prompt=(
        "You search a source tree. The grep output under the task is real. If it shows what the "
        "task asks for, finish now: copy path, line number and code from those lines. Otherwise "
        "grep a shorter identifier or read_file around a hit, then finish."
    ),
    tools=_tools,
    max_steps=3,
    verifier=verify_findings,
    normalize=normalize_findings,
    prefetch=prefetch_grep,
)

EXTRACT = Subagent(
    name="extract",
    description="turns search findings into short facts, each with a file:line citation",
    tier="nano",
    task_schema=ExtractTask,
    output_schema=Facts,
    prompt="From the findings in the context, state the facts that answer the question, each citing path and line.",
    context=ContextPolicy.TASK_AND_RESULTS,
    verifier=verify_facts,
)

_STOP = {
    "which",
    "what",
    "where",
    "does",
    "that",
    "with",
    "from",
    "this",
    "class",
    "function",
    "defined",
    "default",
    "value",
    "the",
    "is",
    "are",
    "of",
    "in",
    "for",
    "how",
    "and",
}


def fallback_plan(state: Mapping[str, Any]) -> list[tuple[str, BaseModel]]:
    """Search for the question's identifiers when the supervisor's plan is unusable."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", state.get("request", ""))
    keys = [w for w in words if w.lower() not in _STOP]
    keys.sort(key=lambda w: (not ("_" in w or any(c.isupper() for c in w[1:])), -len(w)))
    return [("search", SearchTask(query=k)) for k in keys[:2]]


SUPERVISOR = Supervisor(
    subagents=[SEARCH, EXTRACT],
    prompt=(
        "You answer questions about a source tree by delegating. First delegate 1-3 'search' tasks "
        "(a short identifier or phrase each). When findings exist, delegate one 'extract' task with "
        "the question. Set done=true when the results answer the question."
    ),
    answer_schema=Answer,
    answer_prompt=(
        "Answer the question using only the results. Cite the file path and line of the evidence "
        "exactly as the results give them."
    ),
    max_turns=3,
    max_tasks_per_turn=3,
    answer_verifier=verify_answer,
    answer_normalize=normalize_answer,
    fallback_plan=fallback_plan,
)


def build() -> Any:
    """Uncompiled codebase-QA graph (choose the checkpointer at compile time)."""
    return build_supervisor_graph(SUPERVISOR)


graph = build().compile()
graph.name = "codebase_qa"
