"""Build evals/data/answer_checks_runs.jsonl: the answers real main-job runs gave, as checker pairs.

Run: python bench/run_pairs.py [RUN.json ...] > evals/data/answer_checks_runs.jsonl
(default: every ``bench/results/main-job-*.json`` about click, httpx, attrs, rich, marshmallow,
jinja2 or werkzeug).

Each pair is one final answer a run of ``bench/main_job.py`` gave (model outputs, not written by
hand), with the question's keywords and evidence lines from its set, so that
``bench/checker.py`` labels it by the bench's own rule (:func:`main_job.right`) after the
graph's answer normalisation, exactly as the run would be graded today. Repeated
(question, answer, citations) triples are kept once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent
sys.path.insert(0, str(_HERE))

from main_job import SETS  # noqa: E402


def pairs(paths: list[Path]) -> list[dict[str, Any]]:
    """One pair per distinct final answer in the runs' rows."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in paths:
        results = json.loads(path.read_text())["results"]
        spec = json.loads(SETS[results["set"]].read_text())
        items = {q["id"]: q for q in spec["questions"]}
        tree = results["tree"].replace(" ", "-")
        for run in results["runs"]:
            for row in run["rows"]:
                answer, item = row.get("answer"), items.get(row["id"])
                if not answer or item is None:
                    continue
                key = json.dumps([row["id"], answer], sort_keys=True)
                if key in seen:
                    continue
                seen.add(key)
                out.append({
                    "id": f"{row['id']}-{len(out) + 1:03d}",
                    "tree": tree,
                    "question": item["question"],
                    "answer": answer["answer"],
                    "citations": answer.get("citations") or [],
                    "keywords": item["keywords"],
                    "evidence": item["evidence"],
                    "source": f"run:{run['policy']}:{path.name}",
                    "note": item.get("kind", ""),
                })  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(
        p
        for p in (_HERE / "results").glob("main-job-*.json")
        if any(
            s in p.name
            for s in (
                "click",
                "httpx",
                "attrs",
                "rich",
                "marshmallow",
                "jinja2",
                "werkzeug",
                "flask",
                "structlog",
            )
        )
    )
    for pair in pairs(paths):
        print(json.dumps(pair))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
