"""Token buckets by name (API key id, source address), in memory, per process.

A request costs one token; a bucket holds at most ``burst`` and refills at ``per_second``. The state is
per worker process: with gunicorn's N workers a client may get up to N times the limit, which is what
``docs/security.md`` tells operators to plan for. Sharing buckets across processes would put a file or
socket round trip on every request; a check here is a dict lookup and a little arithmetic under a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["Limit", "RateLimiter", "retry_after_header"]


@dataclass(frozen=True)
class Limit:
    """``per_second`` sustained, ``burst`` at once (the bucket's size)."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and self.burst >= 1):
            raise ValueError(f"a rate limit needs per_second > 0 and burst >= 1, not {self}")


class RateLimiter:
    """Buckets keyed by any hashable name; thread-safe; forgets buckets that have refilled when it grows."""

    def __init__(
        self, limit: Limit, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        # name -> [tokens, last refill time]; lists, not objects: this is on every request's path.
        self._buckets: dict[Hashable, list[float]] = {}

    def _bucket(self, name: Hashable, limit: Limit, now: float) -> list[float]:
        b = self._buckets.get(name)
        if b is None:
            if len(self._buckets) >= self._max:
                self._prune(now)
            b = self._buckets[name] = [float(limit.burst), now]
        else:
            b[0] = min(float(limit.burst), b[0] + (now - b[1]) * limit.per_second)
            b[1] = now
        return b

    def hit(self, name: Hashable, limit: Limit | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available (nothing taken)."""
        limit = limit or self.limit
        with self._lock:
            now = self._clock()
            b = self._bucket(name, limit, now)
            if b[0] >= 1.0:
                b[0] -= 1.0
                return 0.0
            return (1.0 - b[0]) / limit.per_second

    def wait(self, name: Hashable, limit: Limit | None = None) -> float:
        """Like :meth:`hit` without taking a token: 0.0 when a token is available now."""
        limit = limit or self.limit
        with self._lock:
            b = self._buckets.get(name)
            if b is None:
                return 0.0
            tokens = min(float(limit.burst), b[0] + (self._clock() - b[1]) * limit.per_second)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / limit.per_second

    def refund(self, name: Hashable, limit: Limit | None = None) -> None:
        """Give back a token taken by :meth:`hit` (for a request that turned out not to count)."""
        limit = limit or self.limit
        with self._lock:
            b = self._buckets.get(name)
            if b is not None:
                b[0] = min(float(limit.burst), b[0] + 1.0)

    def _prune(self, now: float) -> None:
        """Drop buckets that are full again (they hold no information); if none are, start over."""
        full = [
            name
            for name, (tokens, stamp) in self._buckets.items()
            if tokens + (now - stamp) * self.limit.per_second >= self.limit.burst
        ]
        for name in full:
            del self._buckets[name]
        if len(self._buckets) >= self._max:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is whole seconds (RFC 9110); round up so a client that obeys it is let in."""
    return str(max(1, math.ceil(seconds)))
