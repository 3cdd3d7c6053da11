"""The checker on labelled pairs about the pinned requests sdist, from real main-job runs."""

from __future__ import annotations

from tests.answer_checks import mistakes, pairs
from tierflow.evals.trees import requests_root


def test_no_wrong_answer_about_requests_passes_the_checker() -> None:
    items = pairs("requests-2.32.3")  # downloads and verifies the sdist the first time
    runs = [i for i in items if i["source"].startswith("run:")]
    assert runs and any(i["label"] == "wrong" for i in runs)
    let_through, rejected = mistakes(items, str(requests_root()))
    assert let_through == []
    assert len(rejected) <= len([i for i in items if i["label"] == "right"]) // 5, rejected
