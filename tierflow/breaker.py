"""Per-endpoint circuit breakers, shared by every model call of the process.

After ``threshold`` consecutive transient failures on one endpoint (base URL + model), the
breaker opens: calls skip that endpoint (next endpoint, then next tier) without waiting on it.
After ``cooldown_s`` one call is let through as a probe (half-open); its success closes the
breaker, its failure opens it again for another cooldown.

Hand-written rather than pybreaker/purgatory: the call loop already decides what is transient
and records every attempt, so the breaker only has to answer "may I try this endpoint now",
across event loops in several threads (hence a threading lock, not an asyncio one).

Example:
    >>> b = Breakers(threshold=2, cooldown_s=30.0)
    >>> key = ("http://127.0.0.1:9/v1", "m")
    >>> b.failure(key), b.failure(key)
    (False, True)
    >>> b.allow(key), b.state(key)
    (False, 'open')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Breakers", "BREAKERS", "EndpointKey"]

EndpointKey = tuple[str, str]  # (base_url, model)
BreakerState = Literal["closed", "open", "half-open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    cooldown_s: float = 30.0
    probing: bool = False


class Breakers:
    """The breakers of one process, keyed by endpoint."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self._circuits: dict[EndpointKey, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, key: EndpointKey) -> BreakerState:
        """``closed`` (in use), ``open`` (skipped) or ``half-open`` (a probe may go, or went)."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None or c.opened_at is None:
                return "closed"
            if c.probing or self._clock() - c.opened_at >= c.cooldown_s:
                return "half-open"
            return "open"

    def allow(self, key: EndpointKey) -> bool:
        """May a call use this endpoint now? In half-open state only one caller gets True."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None or c.opened_at is None:
                return True
            if c.probing or self._clock() - c.opened_at < c.cooldown_s:
                return False
            c.probing = True
            return True

    def success(self, key: EndpointKey) -> None:
        """A call on the endpoint succeeded: close its breaker."""
        with self._lock:
            self._circuits.pop(key, None)

    def failure(
        self, key: EndpointKey, *, threshold: int | None = None, cooldown_s: float | None = None
    ) -> bool:
        """A transient failure on the endpoint; True when the breaker is (now) open.

        ``threshold`` 0 disables the breaker for this call's tier.
        """
        threshold = self.threshold if threshold is None else threshold
        if threshold <= 0:
            return False
        with self._lock:
            c = self._circuits.setdefault(key, _Circuit())
            c.failures += 1
            if c.probing or c.failures >= threshold:
                c.opened_at, c.probing = self._clock(), False
                c.cooldown_s = self.cooldown_s if cooldown_s is None else cooldown_s
            return c.opened_at is not None

    def reset(self) -> None:
        """Close every breaker (tests; a process that knows its endpoints came back)."""
        with self._lock:
            self._circuits.clear()


BREAKERS = Breakers()
