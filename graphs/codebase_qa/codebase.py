"""Code search parts of a codebase-QA supervisor: task and answer schemas, grep evidence, checks.

The search subagent gets its query grepped before its first model step (:func:`prefetch_grep`);
its findings are snapped to the lines their quoted code is on (:func:`normalize_findings`) and
rejected with a precise reason when they miss the query (:func:`verify_findings`). Facts must
cite real lines (:func:`verify_facts`); the final answer's claims must agree with the lines it
cites (:func:`verify_answer`, :mod:`tierflow.graphs.codebase_qa.claims`), after its citations are moved to
where the evidence is (:func:`normalize_answer`). Line checks are :mod:`tierflow.graphs.codebase_qa.grounding`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from tierflow.graphs.codebase_qa.claims import Verdict, check_answer, evidence
from tierflow.graphs.codebase_qa.grounding import check, locate
from tierflow.tools import fs_tools

__all__ = [
    "SEARCH_NAME",
    "SearchTask",
    "Finding",
    "Findings",
    "ExtractTask",
    "Fact",
    "Facts",
    "Citation",
    "Answer",
    "search_tools",
    "prefetch_grep",
    "shortcut_search",
    "normalize_findings",
    "verify_findings",
    "verify_facts",
    "normalize_answer",
    "verify_answer",
    "answer_evidence",
    "fallback_plan",
]

SEARCH_NAME = "search"  # the search subagent's name, which fallback_plan delegates to


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


def search_tools(env: Mapping[str, Any]) -> list[Any]:
    """The sandboxed file tools (list_files, grep, read_file) over ``env["root"]``."""
    return fs_tools(env.get("root", "."))


# --- grep evidence ----------------------------------------------------------------------------


def _grep_lines(env: Mapping[str, Any], pattern: str, glob: str) -> list[str]:
    grep = {t.name: t for t in search_tools(env)}["grep"]
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
    assigns = _grep_lines(env, rf"^\s*(self\.)?{name}(\s+=\s|\s*:[^=]+=)", task.file_glob)
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


def shortcut_search(task: BaseModel, env: Mapping[str, Any]) -> Findings | None:
    """Findings straight from grep when it found where the query's identifier is defined.

    The search subagent then finishes with no model call; a phrase, or a name grep cannot find
    a definition of, goes to the model as usual.
    """
    assert isinstance(task, SearchTask)
    defined = _definitions(task, env)[:3]
    if not defined:
        return None
    found = []
    for line in defined:
        path, number = _place(line)
        found.append(Finding(path=path, line=number, snippet=line.split(":", 2)[2].strip()))
    where = ", ".join(f"{f.path}:{f.line}" for f in found)
    return Findings(findings=found, summary=f"{task.query} is defined at {where}")


# --- subagent output checks -------------------------------------------------------------------


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


def verify_facts(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> str | None:
    """Every fact must cite an existing file:line."""
    assert isinstance(out, Facts)
    return check(env.get("root", "."), [(f.path, f.line, None) for f in out.facts])


# --- supervisor answer checks and fallback ----------------------------------------------------


def _claims(answer: Answer, state: Mapping[str, Any]) -> Verdict:
    root = (state.get("env") or {}).get("root", ".")
    cites = [(c.path, c.line) for c in answer.citations]
    return check_answer(str(state.get("request", "")), answer.answer, cites, root)


def normalize_answer(answer: BaseModel, state: Mapping[str, Any]) -> BaseModel:
    """Move citations to the lines that bear out the answer's claims; drop the rest.

    When some claim does not hold, only citations of lines that do not exist are dropped
    (as long as one real one is left), so the problem is reported against what was cited.
    """
    assert isinstance(answer, Answer)
    verdict = _claims(answer, state)
    if not verdict.problems and verdict.citations:
        return answer.model_copy(
            update={"citations": [Citation(path=p, line=n) for p, n in verdict.citations]}
        )
    root = (state.get("env") or {}).get("root", ".")
    placed = [locate(root, (c.path, c.line, None)) for c in answer.citations]
    real = [Citation(path=p, line=n) for p, n, _ in filter(None, placed)]
    return answer.model_copy(update={"citations": real}) if real else answer


def answer_evidence(state: Mapping[str, Any]) -> str:
    """The source lines that define, set, raise or return what the question names, for the answer."""
    root = (state.get("env") or {}).get("root", ".")
    found = evidence(str(state.get("request", "")), root)
    if not found:
        return "Evidence from the source: nothing defines the names in the request."
    return "Evidence from the source (path:line: code), to cite and quote:\n" + "\n".join(found)


def verify_answer(answer: BaseModel, state: Mapping[str, Any]) -> str | None:
    """Every claim the question asks for must agree with the lines the answer cites."""
    assert isinstance(answer, Answer)
    problems = _claims(answer, state).problems
    return "; ".join(problems) if problems else None


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
    return [(SEARCH_NAME, SearchTask(query=k)) for k in keys[:2]]
