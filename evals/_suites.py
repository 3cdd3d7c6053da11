"""Suite definitions: dataset, graph, input of one example, and how its final state is scored."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tierflow.evals.evaluators import (
    TRIAGE_FIELDS,
    answer_match,
    citation_scores,
    mean,
    routing_correct,
    triage_scores,
)

__all__ = ["Suite", "SUITES", "Scored", "load_items", "langgraph_root", "DATA_DIR"]

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Scored:
    """Scores of one example: metric -> value, the primary metrics' mean, per-subagent quality."""

    scores: dict[str, float]
    quality: float
    subagent_quality: dict[str, float]
    prediction: Any


@dataclass(frozen=True)
class Suite:
    """One evaluation suite.

    Attributes:
        name: suite name (``codebase_qa``, ``triage``, ``routing``, ``gsm8k``, ...).
        dataset: jsonl file under ``evals/data`` (the project's own suites).
        graph: registry name of the graph in langgraph.json.
        make_input: dataset item -> graph input.
        score: (dataset item, final state) -> :class:`Scored`.
        loader: ``(split, limit) -> items`` for suites whose data is not a jsonl file here
            (public benchmarks read from installed packages; split None: the report split).
        policies: the policies ``--policy all`` expands to for this suite.
    """

    name: str
    dataset: str
    graph: str
    make_input: Callable[[Mapping[str, Any]], dict[str, Any]]
    score: Callable[[Mapping[str, Any], Mapping[str, Any]], Scored]
    loader: Callable[[str | None, int | None], list[dict[str, Any]]] | None = None
    policies: tuple[str, ...] = ("tiered", "all-flagship", "all-nano", "cascade")


@cache
def langgraph_root() -> Path:
    """Directory of the installed ``langgraph`` package (the codebase_qa sandbox root)."""
    spec = importlib.util.find_spec("langgraph")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("langgraph is not installed; `pip install langgraph` to run codebase_qa")
    return Path(next(iter(spec.submodule_search_locations)))


def load_items(
    suite: str, limit: int | None = None, split: str | None = None
) -> list[dict[str, Any]]:
    """The first ``limit`` items of a suite's dataset (all when None).

    ``split`` names a benchmark's split (``calib`` or ``report``; None: ``report``); the
    project's own datasets have one split.
    """
    spec = SUITES[suite]
    if spec.loader is not None:
        return spec.loader(split, limit)
    if split not in (None, "report"):
        raise ValueError(f"suite {suite!r} has one split; drop split={split!r}")
    path = DATA_DIR / spec.dataset
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return items if limit is None else items[: max(0, limit)]


def _qa_input(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"request": item["question"], "env": {"root": str(langgraph_root())}}


def _qa_score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    answer = state.get("answer") or {}
    cites = citation_scores(answer.get("citations") or [], item["evidence"], langgraph_root())
    correct = answer_match(
        answer.get("answer", ""), item["reference_answer"], item["answer_aliases"]
    )
    scores = {"answer": float(bool(answer) and correct), **cites}
    quality = mean([scores["answer"], scores["evidence_line"]])
    return Scored(scores, quality, {}, answer.get("answer"))


def _triage_input(item: Mapping[str, Any]) -> dict[str, Any]:
    ticket = {k: item[k] for k in ("id", "subject", "body", "customer_email")}
    return {"tickets": [ticket]}


CLASSIFY_METRICS = ("category", "urgency", "needs_reply_draft")


def _triage_score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    outcome = (state.get("tickets_out") or {}).get(item["id"])
    scores = triage_scores(outcome, item["reference"])
    per_subagent = {
        "classify": mean(scores[m] for m in CLASSIFY_METRICS),
        "extract": mean(scores[f] for f in TRIAGE_FIELDS),
    }
    return Scored(scores, mean(scores.values()), per_subagent, outcome)


def _routing_input(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": item["task"], "subagent": item["subagent"]}


def _routing_score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    ok = routing_correct(state.get("choice"), item["cheapest_tier"])
    return Scored({"tier": ok}, ok, {"route": ok}, state.get("choice"))


SUITES: dict[str, Suite] = {
    "codebase_qa": Suite("codebase_qa", "codebase_qa.jsonl", "codebase_qa", _qa_input, _qa_score),
    "triage": Suite("triage", "triage.jsonl", "triage", _triage_input, _triage_score),
    "routing": Suite("routing", "routing.jsonl", "routing", _routing_input, _routing_score),
}


def _register_benchmarks() -> None:
    from tierflow.evals._bench_suites import BENCH_SUITES

    SUITES.update(BENCH_SUITES)


_register_benchmarks()
