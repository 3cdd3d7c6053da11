"""Evaluate tier policies on the project's datasets: quality, cost at openai prices, latency.

Example:
    >>> from tierflow.evals import compare
    >>> from tierflow.evals.report import render_table
    >>> from tierflow.evals.scripted import models_for
    >>> results = compare("routing", ["tiered", "all-nano"], limit=3, profile="openai",
    ...                   models=models_for("routing"))
    >>> [r.policy for r in results]
    ['tiered', 'all-nano']
"""

from tierflow.evals._langsmith import langsmith_evaluate
from tierflow.evals._results import ExampleResult, Progress, SuiteResult
from tierflow.evals._runner import acompare, arun, compare, progress_bar, run
from tierflow.evals._suites import SUITES

__all__ = [
    "run",
    "compare",
    "arun",
    "acompare",
    "SuiteResult",
    "ExampleResult",
    "Progress",
    "progress_bar",
    "SUITES",
    "langsmith_evaluate",
]
