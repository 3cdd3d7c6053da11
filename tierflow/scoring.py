"""Text matching a suite's scorer builds on: normalized and exact match, the mean of scores.

Example:
    >>> normalized_match("`StateGraph`", "stategraph")
    True
    >>> mean([1.0, 0.0])
    0.5
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["normalize", "normalized_match", "exact_match", "mean"]


def normalize(text: Any) -> str:
    """Case-, space- and punctuation-insensitive form (underscores kept: they are identifiers)."""
    words = re.sub(r"[^\w]+", " ", str(text).casefold())
    return " ".join(words.split())


def exact_match(predicted: Any, reference: Any) -> bool:
    """Equal after trimming whitespace and surrounding quotes or backticks."""
    return _trim(predicted) == _trim(reference)


def _trim(value: Any) -> str:
    return str(value).strip().strip("`'\"").strip()


def normalized_match(predicted: Any, reference: Any, aliases: Iterable[Any] = ()) -> bool:
    """The prediction equals the reference or an alias after :func:`normalize`."""
    target = normalize(predicted)
    return bool(target) and any(target == normalize(r) for r in (reference, *aliases))


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; 0.0 for no values."""
    items = list(values)
    return sum(items) / len(items) if items else 0.0
