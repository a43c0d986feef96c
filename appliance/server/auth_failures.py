"""Failed authentications, counted in memory and written to the ledger at most once a minute.

Someone guessing keys can send thousands of requests a second; an entry for each would flood the ledger
(and let a guesser grow it at will). So failures are aggregated per (source address, key id, reason) and
each process appends one ``auth.failed`` entry per group and window with the count: the first failure
after a quiet minute is written at once, later ones when the window has passed, on the next request.
Every failure is still counted (the metrics counter) and logged, without the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ledger import LedgerError

__all__ = ["FailedAuthRecorder"]

log = logging.getLogger("appliance.server")

Group = tuple[str, str | None, str]  # source address, key id (when it names an existing key), reason


class FailedAuthRecorder:
    """Aggregates failures; ``append(action, details)`` writes one ledger entry (the node's record)."""

    ACTION = "auth.failed"

    def __init__(
        self,
        append: Callable[[str, Mapping[str, Any]], object],
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._append = append
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[Group, list[Any]] = {}  # group -> [count, first, last] (UTC stamps)
        self._next_flush = float("-inf")

    def add(self, source: str, key_id: str | None, reason: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            row = self._pending.get((source, key_id, reason))
            if row is None:
                self._pending[(source, key_id, reason)] = [1, stamp, stamp]
            else:
                row[0] += 1
                row[2] = stamp
        self.flush_due()

    def flush_due(self) -> None:
        """Write the pending counts if the window has passed (a float comparison when it has not)."""
        if self._pending and self._clock() >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._next_flush = self._clock() + self._window
        for i, ((source, key_id, reason), (count, first, last)) in enumerate(pending.items()):
            details = {"source": source, "key_id": key_id, "reason": reason, "count": count}
            details |= {"first": first, "last": last}
            try:
                self._append(self.ACTION, details)
            except (LedgerError, OSError):  # the ledger is down: keep the counts for the next window
                log.exception("could not record %d failed authentications; will retry", count)
                with self._lock:
                    for group, row in list(pending.items())[i:]:
                        mine = self._pending.setdefault(group, [0, row[1], row[2]])
                        mine[0] += row[0]
                        mine[1] = min(mine[1], row[1])
                return

    @property
    def pending(self) -> int:
        """Failures counted but not yet written."""
        with self._lock:
            return sum(row[0] for row in self._pending.values())
