"""Which statistics a process's hub fetches after a change, and which it may leave behind.

A statistic is wanted when something in this process will answer from it: a
held request on it, or any open stream (watched: fetched on every change), or a
plain GET of it within the last `LIVE_READ_REFRESH_SECONDS` (read lately: then
the dashboards polling it find the new figures stored, a HIT, instead of the
first poll after each change computing them). A read-only refresh runs at most
once per `LIVE_MIN_INTERVAL_MS` per statistic; a later change is fetched when
that interval ends (`due`). Nothing is fetched for a statistic nobody wants.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

NEVER = -1e9


class Interest:
    """Per process: when each statistic was last read and fetched, and who holds on it."""

    def __init__(self, stats: Iterable[str], read_window: float, min_interval: float) -> None:
        self.read_window = max(0.0, read_window)
        self.min_interval = max(0.0, min_interval)
        self.read_at: dict[str, float] = {}  # stat -> monotonic time of its last read here
        self.fetched_at: dict[str, float] = {}  # stat -> when the hub last fetched it
        self.waiting: dict[str, int] = dict.fromkeys(stats, 0)  # held requests per stat
        self.streams = 0  # open streams of this process
        self.due = 0.0  # a deferred read-only refresh is due then (0: none)
        self._lock = threading.Lock()

    def noted_read(self, stat: str) -> bool:
        """A request read `stat`; True when that makes it wanted for a while."""
        if self.read_window <= 0:
            return False
        self.read_at[stat] = time.monotonic()
        return True

    @contextmanager
    def watching(self, stat: str) -> Iterator[None]:
        """A held request on `stat`: wanted on every change while this lasts."""
        with self._lock:
            self.waiting[stat] += 1
        try:
            yield
        finally:
            with self._lock:
                self.waiting[stat] -= 1

    def stream(self, delta: int) -> None:
        with self._lock:
            self.streams += delta

    def watched(self, stat: str) -> bool:
        return self.streams > 0 or self.waiting[stat] > 0

    def read_lately(self, stat: str, now: float) -> bool:
        return now - self.read_at.get(stat, NEVER) <= self.read_window

    def wanted(self, moved: list[str], now: float) -> list[str]:
        """Of the statistics that moved, those to fetch now (sets `due` for deferred ones)."""
        self.due = 0.0
        wanted = []
        for stat in moved:
            if self.watched(stat):
                wanted.append(stat)
            elif self.read_lately(stat, now):
                ready_at = self.fetched_at.get(stat, NEVER) + self.min_interval
                if ready_at <= now:
                    wanted.append(stat)
                else:
                    self.due = min(self.due, ready_at) if self.due else ready_at
        return wanted
