"""Unit-test fixtures shared by every file under tests/unit."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def plain_codebase_qa(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Most unit tests script codebase_qa as *the* example supervisor, call by call.

    They pin the engine's generic mechanics (decide turns, answer repair, human review, resume,
    budgets), written against a supervisor that plans every turn and answers on its own tier.
    The shipped graph also drafts its answer on nano, part by part (``answer_tier``, ``part_drafts``), and skips the second
    planning turn when the code index covers every part (``enough``); those two are tested
    with the graph as shipped in tests marked ``shipped_codebase_qa`` (test_answer_draft.py),
    and the integration tests run it as shipped on real models.
    """
    if request.node.get_closest_marker("shipped_codebase_qa"):
        yield
        return
    import tierflow.graphs.codebase_qa  # noqa: F401  (the package re-exports its compiled graph)

    module = sys.modules["tierflow.graphs.codebase_qa.graph"]
    plain = dataclasses.replace(
        module.SUPERVISOR, answer_tier=None, enough=None, first_round=None, part_drafts=None
    )
    monkeypatch.setattr(module, "SUPERVISOR", plain)  # build() and SPEC.build read it
    monkeypatch.setattr(module, "graph", module.SPEC.compile())  # the registry's entry
    monkeypatch.setattr(sys.modules["tierflow.graphs.codebase_qa"], "SUPERVISOR", plain)
    yield
