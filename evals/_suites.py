"""Suite definitions, derived from the registered graphs' specs: dataset, input, scorer, oracle.

A graph declares its suite once, in its :class:`~tierflow.graphspec.GraphSpec`; :data:`SUITES`
is every registered graph's suite (langgraph.json's order), read on first use. Public
benchmarks (``EvalSuite(benchmark=...)``) get their loader, input and scorer from
:mod:`tierflow.evals._bench_suites`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tierflow.errors import InputError
from tierflow.graphs.codebase_qa.suite import langgraph_root
from tierflow.graphspec import EvalSuite, Oracle, Scored

__all__ = ["Suite", "SUITES", "Scored", "load_items", "langgraph_root", "DATA_DIR"]

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_POLICIES = ("tiered", "all-flagship", "all-nano", "cascade")


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
        oracle: the scripted oracle of :mod:`tierflow.evals.scripted` (own suites).
        benchmark: the public benchmark the suite runs (None: a dataset of this project).
    """

    name: str
    dataset: str
    graph: str
    make_input: Callable[[Mapping[str, Any]], dict[str, Any]]
    score: Callable[[Mapping[str, Any], Mapping[str, Any]], Scored]
    loader: Callable[[str | None, int | None], list[dict[str, Any]]] | None = None
    policies: tuple[str, ...] = DEFAULT_POLICIES
    oracle: Oracle | None = None
    benchmark: str | None = None


def suite_of(name: str, declared: EvalSuite) -> Suite:
    """The suite graph ``name`` declares in its spec."""
    if declared.benchmark is not None:
        from tierflow.evals._bench_suites import bench_suite

        return bench_suite(name, declared)
    assert declared.make_input is not None and declared.score is not None  # EvalSuite checks
    return Suite(name, declared.dataset, name, declared.make_input, declared.score,
                 policies=declared.policies or DEFAULT_POLICIES,
                 oracle=declared.oracle)  # fmt: skip


@cache
def _derived(registry: Path) -> dict[str, Suite]:
    from tierflow.registry import graph_specs

    specs = graph_specs(registry)
    return {name: suite_of(name, s.suite) for name, s in specs.items() if s.suite is not None}


class _Suites(Mapping[str, Suite]):
    """The registered graphs' suites, derived from their specs on first use (it imports them)."""

    def _all(self) -> dict[str, Suite]:
        from tierflow.registry import find_registry

        return _derived(find_registry())

    def __getitem__(self, name: str) -> Suite:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"SUITES({sorted(self)})"


SUITES: Mapping[str, Suite] = _Suites()


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
        raise InputError(f"suite {suite!r} has one split; drop split={split!r}")
    path = DATA_DIR / spec.dataset
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return items if limit is None else items[: max(0, limit)]
