"""The answer checker measured on labelled answer/citation pairs: wrong ones let through, right ones rejected.

Run: python bench/checker.py [--json out.json] [--data PAIRS.jsonl ...]

Pairs are in evals/data/answer_checks.jsonl (tuned on) and evals/data/answer_checks_heldout.jsonl
(click's ``test`` split: never tuned on), each labelled ``right`` or ``wrong`` by hand
against its tree, with where it came from (``source``): a real run of the main job
(``run:<policy>:<commit>``), an eval suite's reference answer (``reference``), or a real answer
with one claim changed (``mutated``: another value, file, base or exception), or hand-written
from the tree in the shapes of the failures issue 28 reports (``hand:click-dev``,
``hand:click-test``). Trees: the pinned requests and click sdists (installed as
bench/main_job.py does) and the installed, pinned langgraph. The table is per file and tree.

Two checks run side by side on every pair: ``claims`` (tierflow.graphs.codebase_qa.claims.check_answer,
what codebase_qa uses now) and ``cited lines exist`` (the check codebase_qa used before: every
citation names an existing line). Nothing fails here; the unit tests hold the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import table

_DIR = Path(__file__).resolve().parents[1] / "evals" / "data"
DATA = [
    _DIR / "answer_checks.jsonl",
    _DIR / "answer_checks_heldout.jsonl",
    _DIR / "answer_checks_runs.jsonl",
]


def load(path: Path) -> list[dict[str, Any]]:
    """The labelled pairs of one file, each marked with its group (file and tree)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    held, runs = "heldout" in path.name, "runs" in path.name
    for row in rows:
        tree = row["tree"].split("-")[0]
        row["group"] = (
            f"{tree} runs" if runs
            else f"{tree} held-out" if held
            else f"{tree} dev" if tree == "click"
            else tree
        )  # fmt: skip
    return rows


def roots() -> dict[str, str]:
    """Tree name -> directory."""
    from tierflow.evals._suites import langgraph_root
    from tierflow.evals.trees import TREES, install

    pinned = {tree.name: str(install(tree)) for tree in TREES.values()}
    return pinned | {"langgraph": str(langgraph_root())}


def judge(item: dict[str, Any], root: str) -> dict[str, Any]:
    """Both checks' verdicts on one pair."""
    from main_job import right

    from tierflow.checks import Verdict
    from tierflow.graphs.codebase_qa.checks import normalize_answer, verify_answer
    from tierflow.graphs.codebase_qa.grounding import check
    from tierflow.graphs.codebase_qa.schemas import Answer, Citation

    cites = [(c["path"], int(c["line"])) for c in item["citations"]]
    state = {"request": item["question"], "env": {"root": root}}
    # What the graph does with a final answer: normalise it (citations moved, mangled paths
    # mapped, a right location's file named), then check it.
    given = Answer(answer=item["answer"], citations=[Citation(path=p, line=n) for p, n in cites])
    final = normalize_answer(given, state)
    assert isinstance(final, Answer)
    said = verify_answer(final, state)
    problems = said.reason if isinstance(said, Verdict) else said
    exists = check(root, [(p, n, None) for p, n in cites]) is None
    label = item.get("label")
    if "keywords" in item:  # a run's answer: graded by the bench's rule, as normalised
        label = "right" if right(item, final.model_dump()) else "wrong"
    return {
        "id": item["id"],
        "label": label,
        "source": item["source"].split(":")[0],
        "group": item["group"],
        "claims_accepts": problems is None,
        "exists_accepts": exists,
        "problems": [problems] if problems else [],
    }


def tally(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    """Wrong accepted and right rejected by one check."""
    return {
        "wrong": sum(r["label"] == "wrong" for r in rows),
        "wrong_accepted": sum(r["label"] == "wrong" and r[key] for r in rows),
        "right": sum(r["label"] == "right" for r in rows),
        "right_rejected": sum(r["label"] == "right" and not r[key] for r in rows),
    }


def measure(args: Any) -> dict[str, Any]:
    """Every pair through both checks."""
    trees = roots()
    items = [item for path in args.data for item in load(Path(path))]
    rows = [judge(item, trees[item["tree"]]) for item in items]
    groups = {
        g: [r for r in rows if r["group"] == g] for g in dict.fromkeys(r["group"] for r in rows)
    }
    return {
        "rows": rows,
        "tallies": {
            g: {"claims": tally(rs, "claims_accepts"), "exists": tally(rs, "exists_accepts")}
            for g, rs in groups.items()
        },
    }


def report(results: dict[str, Any]) -> str:
    """The confusion table, and the pairs the claims check gets wrong."""
    out = []
    for group, t in results["tallies"].items():
        for name, label in (("claims", "claims (now)"), ("exists", "cited lines exist (before)")):
            x = t[name]
            out.append([group, label, f"{x['wrong_accepted']}/{x['wrong']}",
                        f"{x['right_rejected']}/{x['right']}"])  # fmt: skip
    lines = [table(["pairs", "check", "wrong let through", "right rejected"], out)]
    misses = [r for r in results["rows"] if r["claims_accepts"] != (r["label"] == "right")]
    if misses:
        lines.append("\nclaims check mistakes:")
        lines += [f"  {r['id']} ({r['label']}): {r['problems'] or 'accepted'}" for r in misses]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--data", nargs="+", default=[str(d) for d in DATA],
                   help="labelled pairs (JSON Lines); default: both files")  # fmt: skip
    args = p.parse_args(argv)
    results = measure(args)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
