"""The checker on the labelled pairs (the pinned trees from the cache, else installed once)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.answer_checks import HELDOUT, RUNS, mistakes, pairs
from tierflow.evals._suites import langgraph_root
from tierflow.evals.trees import CLICK, HTTPX, REQUESTS, STRUCTLOG, PinnedTree, install


def test_no_wrong_answer_about_langgraph_passes_and_only_yes_no_ones_are_held() -> None:
    items = pairs("langgraph")
    assert sum(i["label"] == "wrong" for i in items) >= 40
    let_through, rejected = mistakes(items, str(langgraph_root()))
    assert let_through == []
    # A bare True/False cites the deciding lines but says nothing they show: it is held.
    assert rejected == ["ref-cqa-041", "ref-cqa-045"]


def _installed(tree: PinnedTree) -> Path:
    # The cached tree, else downloaded from the package index and verified (CI reaches it).
    return install(tree)


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        (REQUESTS, None),
        (CLICK, None),
        # Held out: as first measured, ckh-28-29 (a two-part answer whose second part is
        # unanswered) passed, since a part that claimed only what an earlier part had was not
        # held. That was fixed after seeing it, so these figures are no longer untouched.
        (CLICK, HELDOUT),
    ],
    ids=["requests", "click-dev", "click-heldout"],
)
def test_no_wrong_pair_passes_and_at_most_a_tenth_of_right_ones_are_held(
    tree: PinnedTree, path: Path | None
) -> None:
    items = pairs(tree.name, path) if path else pairs(tree.name)
    assert sum(i["label"] == "wrong" for i in items) >= 20
    let_through, rejected = mistakes(items, str(_installed(tree)))
    assert let_through == []
    assert len(rejected) <= 0.1 * sum(i["label"] == "right" for i in items)


# structlog's pairs: every final answer of its runs (test held out at 95c9528, then dev since)
@pytest.mark.parametrize("tree", [CLICK, HTTPX, STRUCTLOG], ids=["click", "httpx", "structlog"])
def test_the_answers_real_runs_gave_are_judged_as_the_graph_judges_them(tree: PinnedTree) -> None:
    """Model outputs from bench/results (evals/data/answer_checks_runs.jsonl), graded by the
    bench's rule after the graph's normalisation: no wrong one passes, <= 10% of right ones held.

    httpx's before this check (the code at 26a0b93, same pairs): 4 of 15 wrong ones passed (two
    locations whose text named no file or ``exceptions.py``, a second part answered by the class
    line, a wrong default) and 2 of 20 right ones were held (``Timeout(timeout=5.0)`` said 5.0).
    """
    bench = str(Path(__file__).resolve().parents[2] / "bench")
    sys.path.insert(0, bench)  # checker grades with main_job's rule, imported from bench/
    try:
        from checker import judge, load

        items = [i for i in load(RUNS) if i["tree"] == tree.name]
        rows = [judge(i, str(_installed(tree))) for i in items]
    finally:
        sys.path.remove(bench)
    assert sum(r["label"] == "wrong" for r in rows) >= 10
    assert [r["id"] for r in rows if r["label"] == "wrong" and r["claims_accepts"]] == []
    held = [r["id"] for r in rows if r["label"] == "right" and not r["claims_accepts"]]
    assert len(held) <= 0.1 * sum(r["label"] == "right" for r in rows)
