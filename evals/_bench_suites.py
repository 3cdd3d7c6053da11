"""Public-benchmark suites (GSM8K, MMLU, MBPP, BFCL) run through the cascade graphs.

A graph runs a benchmark by declaring ``EvalSuite(benchmark=<name>)`` in its spec; this module
supplies that benchmark's loader, input and scorer (:data:`BENCHMARKS`). Each item becomes a cascade task (``tierflow.graphs.benchmarks.specs``); the final ``answer`` is
scored by the benchmark's own evaluator (:mod:`tierflow.evals.benchmarks`). Splits: ``calib``
(what ``tierflow calibrate`` measures and tunes on) and ``report`` (what reports show; the
default). GSM8K reads items 0-799 only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tierflow.errors import SpecError
from tierflow.evals._suites import Scored, Suite
from tierflow.graphspec import EvalSuite

__all__ = [
    "BENCHMARKS",
    "bench_suite",
    "BENCH_POLICIES",
    "ROUTELLM",
    "TARGET_COST",
    "VARIANTS",
    "Variant",
]

# Every policy a benchmark report compares; "random" runs last (its mix matches a cost).
BENCH_POLICIES = (
    "all-flagship", "all-mini", "all-nano", "static", "cascade", "router", "router+cascade",
    "random",
)  # fmt: skip

# RouteLLM's published operating point (Ong et al. 2024, matrix-factorisation router, GPT-4 vs
# Mixtral): share of calls to the strong model needed for 95% of its quality ("CPT(95%)"),
# i.e. the cost, relative to all-strong, at which it keeps 95% of the quality.
ROUTELLM: dict[str, float] = {"gsm8k": 0.65, "mmlu": 0.55}
# The replays of RouteLLM's own records (tierflow.evals.replay) are judged by the same figures.
ROUTELLM |= {f"routellm-{k}": v for k, v in list(ROUTELLM.items())}

# The cost caps the report's "what it would take" section works out (tierflow's targets: 95%
# of all-flagship's quality at <= this share of its cost); 50% elsewhere.
TARGET_COST: dict[str, float] = {"gsm8k": 0.50, "mmlu": 0.45}
TARGET_COST |= {f"routellm-{k}": v for k, v in list(TARGET_COST.items())}


@dataclass(frozen=True)
class Variant:
    """The same items through another graph, for some policies: extra rows of a report.

    BFCL's forced-vs-native comparison is one: the ``bfcl`` graph asks for the calls as a
    structured answer, ``bfcl_native`` offers the functions as native tools.
    """

    suite: str  # the graph (suite) the items also run through
    label: str  # what its rows add to the policy name
    policies: tuple[str, ...]  # the policies it runs for, when the report ran them


VARIANTS: dict[str, tuple[Variant, ...]] = {
    "bfcl": (Variant("bfcl_native", "native tools", ("all-flagship", "all-nano", "cascade")),),
}

_LETTERS = ("A", "B", "C", "D")


def _module(name: str) -> Any:
    return importlib.import_module(f"tierflow.evals.benchmarks.{name}")


def _loader(name: str) -> Callable[[str | None, int | None], list[dict[str, Any]]]:
    def load(split: str | None, limit: int | None) -> list[dict[str, Any]]:
        return list(_module(name).load(split or "report", limit))

    return load


def _scored(value: float, prediction: Any) -> Scored:
    return Scored({"correct": value}, value, {"solve": value}, prediction)


def _field_score(
    bench: str, field: str
) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Scored]:
    """Scorer of an answer whose ``field`` is the prediction (none or empty scores 0)."""

    def score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
        got = (state.get("answer") or {}).get(field)
        missing = got is None or got == ""
        return _scored(0.0 if missing else _module(bench).score(item, got), got)

    return score


def _gsm8k_input(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": {"question": item["question"]}, "task_id": item["id"]}


def _mmlu_input(item: Mapping[str, Any]) -> dict[str, Any]:
    choices = dict(zip(_LETTERS, item["choices"], strict=False))
    task = {"subject": item["subject"].replace("_", " "), "question": item["question"],
            "choices": choices}  # fmt: skip
    return {"task": task, "task_id": item["id"]}


def _mbpp_input(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": {"description": item["text"], "test": item["visible_tests"]},
            "task_id": item["id"]}  # fmt: skip


def _bfcl_input(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": {"question": item["question"], "functions": item["tools"]},
            "task_id": item["id"]}  # fmt: skip


def _bfcl_score(item: Mapping[str, Any], state: Mapping[str, Any]) -> Scored:
    answer = state.get("answer")
    if answer is None:
        return _scored(0.0, None)
    calls = list(answer.get("calls") or [])
    return _scored(_module("bfcl").score(item, calls), calls)


Reader = Callable[[Mapping[str, Any]], dict[str, Any]]
Scorer = Callable[[Mapping[str, Any], Mapping[str, Any]], Scored]

# Benchmark -> (item -> graph input, scorer); its items come from tierflow.evals.benchmarks.<name>.
BENCHMARKS: dict[str, tuple[Reader, Scorer]] = {
    "gsm8k": (_gsm8k_input, _field_score("gsm8k", "answer")),
    "mmlu": (_mmlu_input, _field_score("mmlu", "answer")),
    "mbpp": (_mbpp_input, _field_score("mbpp", "code")),
    "bfcl": (_bfcl_input, _bfcl_score),
}


def bench_suite(name: str, declared: EvalSuite) -> Suite:
    """The suite of graph ``name``, which runs the public benchmark its spec names."""
    benchmark = str(declared.benchmark)
    if benchmark not in BENCHMARKS:
        raise SpecError(
            f"graph {name!r} declares EvalSuite(benchmark={benchmark!r}), which evals does not "
            f"read; use one of {sorted(BENCHMARKS)} or add it to BENCHMARKS in {__name__}"
        )
    make_input, score = BENCHMARKS[benchmark]
    policies = declared.policies or BENCH_POLICIES
    return Suite(name, "", name, make_input, score, _loader(benchmark), policies,
                 benchmark=benchmark)  # fmt: skip
