"""The labelled answer/citation pairs of evals/data/answer_checks*.jsonl, judged by the checker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tierflow.graphs.codebase_qa.claims import check_answer

DATA = Path(__file__).resolve().parents[1] / "evals" / "data" / "answer_checks.jsonl"
HELDOUT = DATA.with_name("answer_checks_heldout.jsonl")
RUNS = DATA.with_name("answer_checks_runs.jsonl")  # real runs' answers (bench/run_pairs.py)


def write_tree(base: Path, files: dict[str, str]) -> str:
    """Write ``{relative path: text}`` under ``base`` (folders made as needed); the root as str."""
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return str(base)


def problems(root: str, question: str, answer: str, *cites: tuple[str, int]) -> list[str]:
    """What the checker finds wrong with ``answer`` citing ``cites`` in the tree at ``root``."""
    return check_answer(question, answer, list(cites), root).problems


def pairs(tree: str, path: Path = DATA) -> list[dict[str, Any]]:
    """The labelled pairs about ``tree`` (``langgraph``, ``requests-2.32.3``, ``click-8.1.8``)."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [r for r in rows if r["tree"] == tree]


def mistakes(items: list[dict[str, Any]], root: str) -> tuple[list[str], list[str]]:
    """(wrong pairs the checker accepts, right pairs it rejects), by id."""
    let_through, rejected = [], []
    for item in items:
        cites = [(c["path"], int(c["line"])) for c in item["citations"]]
        ok = not check_answer(item["question"], item["answer"], cites, root).problems
        if ok and item["label"] == "wrong":
            let_through.append(item["id"])
        if not ok and item["label"] == "right":
            rejected.append(item["id"])
    return let_through, rejected
