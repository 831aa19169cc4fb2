"""Per-process cache counters, pushed to the shared store in one round trip per request."""

from __future__ import annotations

import threading
from collections import Counter


class StatsBuffer:
    """hits/misses/fetches/invalidations/errors, in total and per cached name."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._counts)

    def add(self, stat: str, name: str) -> None:
        with self._lock:
            self._counts[stat] += 1
            self._counts[f"{stat}:{name}"] += 1

    def take(self) -> Counter[str]:
        """Everything counted so far; the buffer starts again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def restore(self, counts: Counter[str]) -> None:
        """Put back counts that could not be pushed, to try again later."""
        with self._lock:
            self._counts.update(counts)

    def peek(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)
