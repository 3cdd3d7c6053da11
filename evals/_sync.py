"""Run a coroutine to completion from sync code, also from inside a running loop (a notebook)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` and return its result, whether or not an event loop is running here.

    Without a running loop this is ``asyncio.run``; inside one (a notebook cell) the coroutine
    runs on a worker thread's own loop, as a loop cannot be re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
