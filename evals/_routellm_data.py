"""RouteLLM's per-item outcomes (GPT-4 vs Mixtral-8x7B on GSM8K and MMLU): rows, keys, split.

The split is by a hash of each row's key, so it never depends on outcomes or on file order:
a row is in the calibration part when ``sha256("routellm-split:" + key)`` read as a fraction
of 2**256 is below ``CALIBRATION_SHARE``; every other row is in the report part.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tierflow.errors import InputError

__all__ = [
    "CALIBRATION_SHARE",
    "DATA_DIR",
    "FORBIDDEN_GSM8K",
    "ReplayRow",
    "load_rows",
    "split_rows",
    "is_calibration",
    "stratified_order",
]

# $TIERFLOW_ROUTELLM_DATA, else the shared data folder beside this checkout.
DATA_DIR = Path(
    os.environ.get("TIERFLOW_ROUTELLM_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"
)
CALIBRATION_SHARE = 0.5
# GSM8K test indexes kept for an independent check: never read, never used to choose anything.
FORBIDDEN_GSM8K = range(800, 1319)
_FILES = {"gsm8k": "gsm8k.csv.gz", "mmlu": "mmlu.csv.gz"}


@dataclass(frozen=True)
class ReplayRow:
    """What both models did on one benchmark item."""

    key: str
    prompt: str
    weak_correct: bool
    strong_correct: bool
    domain: str = ""
    weak_response: str = ""
    strong_response: str = ""
    answer: str = ""


def _flag(value: str, where: str) -> bool:
    if value not in ("True", "False"):
        raise InputError(f"{where}: expected True or False, got {value!r}; is this RouteLLM data?")
    return value == "True"


def _gsm8k_row(rec: dict[str, str]) -> ReplayRow:
    index = int(rec["index"])
    if index in FORBIDDEN_GSM8K:
        raise InputError(
            f"GSM8K row {index} is in the held-out range 800-1318; remove it from the file: "
            "those items must never be used to choose anything"
        )
    key = f"gsm8k:{index}"
    return ReplayRow(
        key=key,
        prompt=rec["prompt"],
        weak_correct=_flag(rec["weak_correct"], key),
        strong_correct=_flag(rec["strong_correct"], key),
        weak_response=rec.get("weak_response", ""),
        strong_response=rec.get("strong_response", ""),
        answer=rec.get("answer", ""),
    )


def load_rows(name: str, data_dir: Path | None = None) -> list[ReplayRow]:
    """The rows of ``gsm8k`` or ``mmlu`` in file order.

    MMLU rows have no id in the file; their key is ``mmlu:<domain>:<n>``, the n-th row of that
    domain in file order.

    Raises:
        InputError: an unknown name, a missing file, or a GSM8K row in the held-out range.
    """
    if name not in _FILES:
        raise InputError(f"unknown RouteLLM set {name!r}; use one of {', '.join(_FILES)}")
    path = (data_dir or DATA_DIR) / _FILES[name]
    if not path.is_file():
        raise InputError(
            f"{path} is missing: it ships in shared/data/routellm/ beside the checkout; "
            "or set TIERFLOW_ROUTELLM_DATA to the folder that holds it"
        )
    csv.field_size_limit(sys.maxsize)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        records = list(csv.DictReader(f))
    if name == "gsm8k":
        return [_gsm8k_row(r) for r in records]
    seen: dict[str, int] = defaultdict(int)
    rows = []
    for rec in records:
        domain = rec["domain"]
        key = f"mmlu:{domain}:{seen[domain]}"
        seen[domain] += 1
        rows.append(
            ReplayRow(
                key=key,
                prompt=rec["prompt"],
                weak_correct=_flag(rec["weak_correct"], key),
                strong_correct=_flag(rec["strong_correct"], key),
                domain=domain,
            )
        )
    return rows


def _fraction(salt: str, key: str) -> float:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_calibration(key: str, share: float = CALIBRATION_SHARE) -> bool:
    """True when ``key`` falls in the calibration part (a fixed hash rule, see the module)."""
    return _fraction("routellm-split", key) < share


def split_rows(
    rows: list[ReplayRow], share: float = CALIBRATION_SHARE
) -> tuple[list[ReplayRow], list[ReplayRow]]:
    """``(calibration, report)``: disjoint, together every row, each in file order."""
    calibration = [r for r in rows if is_calibration(r.key, share)]
    report = [r for r in rows if not is_calibration(r.key, share)]
    return calibration, report


def stratified_order(rows: list[ReplayRow]) -> list[ReplayRow]:
    """Rows so that every prefix is a sample stratified by domain (proportional shares).

    Within a domain the order is a fixed hash of the key; across domains a row at relative
    position ``(i + 0.5) / n`` in its domain sorts by that number, so a prefix of any length
    takes about the same share of every domain.
    """
    by_domain: dict[str, list[ReplayRow]] = defaultdict(list)
    for row in rows:
        by_domain[row.domain].append(row)
    ranked = []
    for domain, members in by_domain.items():
        members.sort(key=lambda r: _fraction("routellm-order", r.key))
        n = len(members)
        ranked += [((i + 0.5) / n, domain, r.key, r) for i, r in enumerate(members)]
    ranked.sort(key=lambda t: t[:3])
    return [t[3] for t in ranked]
