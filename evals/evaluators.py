"""Pure scoring functions: answer match, triage fields, citations, routing (no I/O but reading files).

Each workflow's scorers live beside its graph (``graphs/<name>/suite.py``, named by its
:class:`~tierflow.graphspec.GraphSpec`), the text matching they share in
:mod:`tierflow.scoring`; this module gathers them for notebooks and tests.

Example:
    >>> normalized_match("`StateGraph`", "stategraph")
    True
    >>> answer_match("It is StateGraph.", "StateGraph")
    True
    >>> routing_correct("Mini", "mini")
    1.0
"""

from __future__ import annotations

from tierflow.graphs.codebase_qa.suite import WINDOW, answer_match, citation_scores
from tierflow.graphs.routing.suite import routing_correct
from tierflow.graphs.triage.suite import TRIAGE_FIELDS, triage_scores
from tierflow.scoring import exact_match, mean, normalize, normalized_match

__all__ = [
    "normalize",
    "normalized_match",
    "exact_match",
    "answer_match",
    "TRIAGE_FIELDS",
    "triage_scores",
    "citation_scores",
    "routing_correct",
    "mean",
    "WINDOW",
]
