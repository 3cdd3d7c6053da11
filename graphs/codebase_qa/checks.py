"""The codebase-QA checks: findings and facts must cite real lines, the answer's claims must hold.

Findings are snapped to the lines their quoted code is on (:func:`normalize_findings`) and
rejected with a precise reason when they miss the query (:func:`verify_findings`). Facts must
cite real lines (:func:`verify_facts`); the final answer's claims must agree with the lines it
cites (:func:`verify_answer`, :mod:`tierflow.graphs.codebase_qa.claims`), after its citations are
moved to where the evidence is (:func:`normalize_answer`). Line checks are
:mod:`tierflow.graphs.codebase_qa.grounding`'s. Each ``verify_*`` gives a reason (rejected) or
None, as a :class:`~tierflow.nodes.verifier.Check` declared the short way.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel

from tierflow.checks import Verdict
from tierflow.graphs.codebase_qa._checker import for_review
from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._paths import fix_file_names, resolve_cite, shown_lines
from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.graphs.codebase_qa.claims import (
    ClaimsReport,
    check_answer,
    evidence,
    index_parts,
    part_evidence,
)
from tierflow.graphs.codebase_qa.grounding import check, locate
from tierflow.graphs.codebase_qa.schemas import (
    Answer,
    Citation,
    Facts,
    Finding,
    Findings,
    SearchTask,
)
from tierflow.graphs.codebase_qa.search import SEARCH_NAME, definitions, grep_hits, place_of

__all__ = [
    "normalize_findings", "verify_findings", "verify_facts", "normalize_answer", "verify_answer",
    "answer_evidence", "parts_covered", "first_searches",
]  # fmt: skip


_TOOL_LINE = re.compile(r"([^\s:]+\.\w+):(\d+)(?::\s?(.*))?")


def _unpacked(f: Finding) -> Finding:
    """A finding whose path is a whole tool-output line (``a.py:50: code``), split into fields."""
    m = _TOOL_LINE.fullmatch(f.path.strip())
    if m is None:
        return f
    code = f.snippet.strip() or (m[3] or "").strip()
    return Finding(path=m[1], line=int(m[2]), snippet=code)


def normalize_findings(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> BaseModel:
    """Snap each finding to the line its quoted code is on; drop ones that quote nothing real.

    A path written as the tool's whole output line (``debughelpers.py:50: class X(...)``) is
    split into its path, line and code first. When no finding can be grounded they are all
    kept, so the verifier explains the problem.
    """
    assert isinstance(out, Findings)
    root = env.get("root", ".")
    unpacked = [_unpacked(f) for f in out.findings]
    placed = [locate(root, (f.path, f.line, f.snippet)) for f in unpacked]
    grounded = [Finding(path=p, line=n, snippet=c or "") for p, n, c in filter(None, placed)]
    if out.findings and not grounded:
        return out
    return out.model_copy(update={"findings": grounded})


def verify_findings(task: BaseModel, out: BaseModel, env: Mapping[str, Any]) -> str | None:
    """Findings must quote real lines, and mention the query when the tree contains it.

    A finding at the query's definition is enough (``flask.get_flashed_messages`` is defined
    by ``def get_flashed_messages(``); otherwise one must contain the query's text, or its
    last dotted name.
    """
    assert isinstance(task, SearchTask) and isinstance(out, Findings)
    problem = check(env.get("root", "."), [(f.path, f.line, f.snippet) for f in out.findings])
    if problem:
        return problem
    defined = definitions(task, env)
    places = {(f.path, f.line) for f in out.findings}
    if defined:
        if any(place_of(line) in places for line in defined):
            return None
        return (
            f"no finding is where {task.query!r} is defined; it is defined at "
            f"{'; '.join(defined[:3])}. Include that line"
        )
    query = task.query.lower()
    said = {query, query.rsplit(".", 1)[-1]} if re.fullmatch(r"[\w.]+", query) else {query}
    if any(q in f.snippet.lower() for f in out.findings for q in said):
        return None
    hits = grep_hits(task, env)
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


def _claims(answer: Answer, state: Mapping[str, Any]) -> ClaimsReport:
    root = (state.get("env") or {}).get("root", ".")
    cites = [(c.path, c.line) for c in answer.citations]
    return check_answer(str(state.get("request", "")), answer.answer, cites, root)


def normalize_answer(answer: BaseModel, state: Mapping[str, Any]) -> BaseModel:
    """Move citations to the lines that bear out the answer's claims; drop the rest.

    When some claim does not hold, only citations of lines that do not exist are dropped
    (as long as one real one is left), so the problem is reported against what was cited.
    """
    assert isinstance(answer, Answer)
    root = (state.get("env") or {}).get("root", ".")
    files = Tree(root).files()
    qa = _mended(answer, files, shown_lines(_shown_text(state), files))
    verdict = _claims(qa, state)
    if not verdict.problems and verdict.citations:
        text = qa.answer
        for path, line in verdict.defined_at:  # a right location the answer's text leaves out
            if PurePosixPath(path).name not in text:
                text = f"{text.rstrip()} (defined in {path}, line {line})"
        return qa.model_copy(
            update={
                "answer": text,
                "citations": [Citation(path=p, line=n) for p, n in verdict.citations],
            }
        )
    placed = [locate(root, (c.path, c.line, None)) for c in qa.citations]
    real = [Citation(path=p, line=n) for p, n, _ in filter(None, placed)]
    return qa.model_copy(update={"citations": real}) if real else qa


def _shown_text(state: Mapping[str, Any]) -> str:
    """The ``path:line`` places the answer was shown: findings, facts and the evidence."""
    places = [
        f"{item.get('path')}:{item.get('line')}"
        for r in (state.get("results") or {}).values()
        for key in ("findings", "facts")
        for item in ((r.get("output") or {}).get(key) or [])
        if isinstance(item, Mapping)
    ]
    return "\n".join([*places, answer_evidence(state)])


def _mended(qa: Answer, files: list[str], shown: dict[int, set[str]] | None = None) -> Answer:
    """The answer with HTML entities unescaped and mangled paths mapped to the tree's files.

    Some chat templates hand back ``&#34;`` for ``"``; small models write ``#/models.py`` or
    ``/client.py:879`` for ``_models.py``, or the schema's ``#/$defs/Citation`` for a path
    with the right line (:mod:`._paths`). Only a path that means one file is changed; the rest
    are checked as written.
    """
    text = html.unescape(qa.answer) if "&" in qa.answer else qa.answer
    text = fix_file_names(text, files)
    cites = []
    for c in qa.citations:
        found = resolve_cite(c.path, c.line, files, shown)
        cites.append(Citation(path=found[0], line=found[1]) if found else c)
    if text == qa.answer and cites == list(qa.citations):
        return qa
    return qa.model_copy(update={"answer": text, "citations": cites})


def answer_evidence(state: Mapping[str, Any]) -> str:
    """The question's parts, each with its index-checked facts, and the source lines they name.

    The answering model sees what each part asks and what counts as an answer to it, then the
    compact facts the code index holds for it (definition line, default, annotation, bases,
    members, body lines, each as ``path:line``), then the lines the old reading found.
    """
    root = (state.get("env") or {}).get("root", ".")
    question = str(state.get("request", ""))
    out = [part_evidence(question, root)]
    found = evidence(question, root)
    if found:
        out.append(
            "Evidence from the source (path:line: code), to cite and quote:\n" + "\n".join(found)
        )
    elif not out[0]:
        return "Evidence from the source: nothing defines the names in the request."
    return "\n\n".join(o for o in out if o)


def verify_answer(answer: BaseModel, state: Mapping[str, Any]) -> str | Verdict | None:
    """Every claim the question asks for must agree with the lines the answer cites.

    When every problem is one only a person can settle (a yes/no the cited lines cannot
    decide), the rejection is not repairable: another model try would get the same verdict.
    """
    assert isinstance(answer, Answer)
    problems = _claims(answer, state).problems
    if not problems:
        return None
    reason = "; ".join(problems)
    if for_review(problems):
        return Verdict.reject(reason, repairable=False)
    return reason


def _index_answers(state: Mapping[str, Any]) -> list[Any]:
    """The question's parts when the code index has facts for every one of them, else []."""
    index = index_for((state.get("env") or {}).get("root", "."))
    parts = index_parts(index, str(state.get("request", "")))
    if index is None or not parts or not all(facts(index, p) for p in parts):
        return []
    return parts


def first_searches(state: Mapping[str, Any]) -> list[tuple[str, BaseModel]]:
    """The supervisor's ``first_round``: a search for each part's subject, planned without a model.

    Only when the code index has facts for every part of the question (what
    :func:`parts_covered` then finds, so the answer is written with no planning call); a
    question the index cannot answer part by part is planned by the supervisor's model.
    """
    subjects = dict.fromkeys(p.subject for p in _index_answers(state) if p.subject)
    return [(SEARCH_NAME, SearchTask(query=s)) for s in list(subjects)[:3]]


def parts_covered(state: Mapping[str, Any]) -> bool:
    """Whether a search finished and the code index has facts for every part of the question.

    The supervisor's ``enough`` test: the answer is then written from those facts (they are
    what :func:`answer_evidence` shows it) with no further planning call.
    """
    if not any(r.get("status") == "done" for r in (state.get("results") or {}).values()):
        return False
    return bool(_index_answers(state))
