"""A small cache keyed by object identity, for values derived from long-lived schema objects."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["IdentityMemo"]

T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """``fn(obj)`` computed once per object (by ``id``), for objects that are not hashable.

    The object is kept alive while it is cached, so its id cannot be reused by another one;
    beyond ``maxsize`` entries the oldest are dropped (and recomputed if asked for again).
    """

    def __init__(self, fn: Callable[[Any], T], maxsize: int = 1024) -> None:
        self._fn = fn
        self._maxsize = maxsize
        self._hits: OrderedDict[int, tuple[Any, T]] = OrderedDict()

    def __call__(self, obj: Any) -> T:
        hit = self._hits.get(id(obj))
        if hit is None or hit[0] is not obj:
            hit = self._hits[id(obj)] = (obj, self._fn(obj))
            while len(self._hits) > self._maxsize:
                self._hits.popitem(last=False)
        return hit[1]
