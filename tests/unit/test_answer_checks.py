"""The checker on the labelled pairs about the installed, pinned langgraph (offline)."""

from __future__ import annotations

from tests.answer_checks import mistakes, pairs
from tierflow.evals._suites import langgraph_root


def test_no_wrong_answer_about_langgraph_passes_and_only_yes_no_ones_are_held() -> None:
    items = pairs("langgraph")
    assert sum(i["label"] == "wrong" for i in items) >= 40
    let_through, rejected = mistakes(items, str(langgraph_root()))
    assert let_through == []
    # Which of yes and no is right is behaviour no cited line shows: a reviewer confirms it.
    assert rejected == ["ref-cqa-041", "ref-cqa-045"]
