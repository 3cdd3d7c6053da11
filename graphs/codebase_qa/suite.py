"""Codebase QA's eval suite: questions about the installed langgraph, answers and citations scored.

Example:
    >>> answer_match("It is StateGraph.", "StateGraph")
    True
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from tierflow.graphspec import Scored
from tierflow.scoring import mean, normalize, normalized_match

__all__ = ["langgraph_root", "make_input", "score", "answer_match", "citation_scores", "WINDOW"]

WINDOW = 3  # cited line may sit this many lines away from the evidence


@cache
def langgraph_root() -> Path:
    """Directory of the installed ``langgraph`` package (the codebase_qa sandbox root)."""
    spec = importlib.util.find_spec("langgraph")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("langgraph is not installed; `pip install langgraph` to run codebase_qa")
    return Path(next(iter(spec.submodule_search_locations)))


def make_input(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item's question, asked about the installed langgraph."""
    return {"request": item["question"], "env": {"root": str(langgraph_root())}}


def score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    """The answer against the reference, its citations against the evidence."""
    answer = state.get("answer") or {}
    cites = citation_scores(answer.get("citations") or [], item["evidence"], langgraph_root())
    correct = answer_match(
        answer.get("answer", ""), item["reference_answer"], item["answer_aliases"]
    )
    scores = {"answer": float(bool(answer) and correct), **cites}
    quality = mean([scores["answer"], scores["evidence_line"]])
    return Scored(scores, quality, {}, answer.get("answer"))


def answer_match(predicted: Any, reference: Any, aliases: Iterable[Any] = ()) -> bool:
    """Normalized match, or the reference (or an alias) appears as whole words in the answer."""
    if normalized_match(predicted, reference, aliases):
        return True
    padded = f" {normalize(predicted)} "
    return any(normalize(r) and f" {normalize(r)} " in padded for r in (reference, *aliases))


def _strip_prefix(path: str) -> str:
    path = path.strip().lstrip("./")
    return path.removeprefix("langgraph/")


def _lines(root: Path, path: str) -> list[str] | None:
    file = (root / _strip_prefix(path)).resolve()
    try:
        if not file.is_relative_to(root.resolve()):
            return None
        return file.read_text(errors="replace").splitlines()
    except (OSError, ValueError):
        return None


def _squash(text: str) -> str:
    return " ".join(text.split())


def citation_scores(
    citations: Sequence[Mapping[str, Any]], evidence: Sequence[Mapping[str, Any]], root: Path | str
) -> dict[str, float]:
    """How well ``citations`` (``{"path", "line"}``) support the dataset's ``evidence``.

    Returns:
        ``cites_exist``: every cited path:line exists under ``root`` (0 when nothing is cited);
        ``evidence_file``: an evidence file is among the cited files;
        ``evidence_line``: a cited line is within ±3 lines of an evidence ``contains`` string.
    """
    root = Path(root)
    cited = [(_strip_prefix(str(c.get("path", ""))), int(c.get("line") or 0)) for c in citations]
    texts = {p: _lines(root, p) for p, _ in cited}
    exist = bool(cited) and all(
        texts[p] is not None and 0 < n <= len(texts[p] or []) for p, n in cited
    )
    files = {p for p, _ in cited}
    evidence_file = any(_strip_prefix(e["path"]) in files for e in evidence)
    evidence_line = False
    for path, line in cited:
        lines = texts[path] or []
        near = _squash("\n".join(lines[max(0, line - 1 - WINDOW) : line + WINDOW]))
        if any(
            _strip_prefix(e["path"]) == path and _squash(e["contains"]) in near for e in evidence
        ):
            evidence_line = True
            break
    return {
        "cites_exist": float(exist),
        "evidence_file": float(evidence_file),
        "evidence_line": float(evidence_line),
    }
