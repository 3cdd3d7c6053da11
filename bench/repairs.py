"""Which of the answer node's repairs paid, replayed from every recorded main-job run.

Run: python bench/repairs.py [RUN.json ...]   (default: every bench/results/main-job-*.json)

Each row of a run records its answer tries (``answers_checked``: tier, accepted, the check's
reason, the answer). For every rejected try that was followed by another try on the same tier,
this counts whether that next try passed, split by whether the rejection was one no repair can
address (the checker's problems all end with ``FOR_REVIEW``: a yes/no the cited lines cannot
decide; ``Verdict.repairable`` False). It then replays "end the repairs there" on those rows: the
answer that try gave stands, graded by the bench's own rule (:func:`main_job.right`), and prints
the calls saved and the right answers lost or gained. No model is called.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent
sys.path.insert(0, str(_HERE))

from _common import table  # noqa: E402
from main_job import SETS, right  # noqa: E402

from tierflow.graphs.codebase_qa._checker import FOR_REVIEW, for_review  # noqa: E402


def _for_review(reason: str) -> bool:
    """Whether every problem of a joined reason is one for a person (verify_answer's rule)."""
    return for_review(re.split(rf"; (?!{re.escape(FOR_REVIEW)})", reason) if reason else [])


def replay(paths: list[Path]) -> dict[str, Any]:
    """The same-tier repairs' outcomes by kind of rejection, and the stop rule's effect."""
    counts = {k: {"repairs": 0, "passed": 0} for k in ("for a person", "other")}
    saved = lost = gained = rows_cut = 0
    for path in paths:
        results = json.loads(path.read_text()).get("results")
        if not isinstance(results, dict) or not results.get("runs"):
            continue
        spec = json.loads(SETS[results["set"]].read_text())
        items = {q["id"]: q for q in spec["questions"]}
        for run in results["runs"]:
            for row in run["rows"]:
                tries = row.get("answers_checked") or []
                cut = None
                for i, (a, b) in enumerate(itertools.pairwise(tries)):
                    if a["ok"] or a["tier"] != b["tier"]:
                        continue
                    kind = "for a person" if _for_review(a.get("reason") or "") else "other"
                    counts[kind]["repairs"] += 1
                    counts[kind]["passed"] += bool(b["ok"])
                    if kind == "for a person" and cut is None:
                        cut = i
                if cut is None:
                    continue
                then = right(items[row["id"]], tries[cut]["answer"])
                rows_cut += 1
                saved += len(tries) - 1 - cut
                lost += row["right"] and not then
                gained += then and not row["right"]
    return {"repairs": counts, "rows_cut": rows_cut, "calls_saved": saved, "right_lost": lost,
            "right_gained": gained}  # fmt: skip


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((_HERE / "results").glob("main-job-*.json"))
    out = replay(paths)
    print(f"same-tier answer repairs in {len(paths)} run files, by the rejection before them:")
    print(table(["rejection", "repairs", "next try passed"],
                [[k, v["repairs"], v["passed"]] for k, v in out["repairs"].items()]))  # fmt: skip
    print(
        f"ending the repairs at the first rejection for a person: {out['rows_cut']} questions, "
        f"{out['calls_saved']} calls saved, {out['right_lost']} right answers lost, "
        f"{out['right_gained']} gained"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
