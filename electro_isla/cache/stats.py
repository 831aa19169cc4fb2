"""The one counting sink: every cache event is counted here once.

Each event (hit, miss, fetch, invalidation, error, bypass) goes to the shared
statistics (the per-process buffer pushed to the store once per request; a
Redis lookup script has already counted its own hit or miss), to Prometheus,
and to cache.log, and is then sent as a blinker signal for whoever listens
(`cache-warm` watches fetches, tests watch everything).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from blinker import Signal
from flask import Flask

import electro_isla.cache.signals as signals
from electro_isla.cache.registry import REGISTRY
from electro_isla.metrics import (
    CACHE_BYPASSES,
    CACHE_ERRORS,
    CACHE_FETCH_SECONDS,
    CACHE_FETCHES,
    CACHE_HITS,
    CACHE_INVALIDATIONS,
    CACHE_MISSES,
)
from electro_isla.shared_store import REDIS_ERRORS, CircuitBreaker

log = logging.getLogger("electro_isla.cache")

STAT_FIELDS = ("hits", "misses", "fetches", "invalidations", "errors")
FAMILY_FIELDS = ("hits", "misses", "fetches", "invalidations")


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


def _notify(signal: Signal, app: Flask, **kwargs: Any) -> None:
    if signal.receivers:  # most requests have no listener: skip the dispatch
        signal.send(app, **kwargs)


class Counting:
    """The sink of one app's cache events (see the module docstring)."""

    def __init__(self, app: Flask, breaker: CircuitBreaker) -> None:
        self.app = app
        self.breaker = breaker
        self.buffer = StatsBuffer()

    def looked_up(self, name: str, key: str, hit: bool, counted: bool) -> None:
        """A HIT or MISS; `counted`: the store's script already counted it."""
        if not counted:
            self.buffer.add("hits" if hit else "misses", name)
        (CACHE_HITS if hit else CACHE_MISSES).labels(name).inc()
        log.info("%s %s", "HIT" if hit else "MISS", key)
        _notify(signals.cache_hit if hit else signals.cache_miss, self.app, name=name, key=key)

    def fetched(self, name: str, key: str, seconds: float, ttl: int) -> None:
        self.buffer.add("fetches", name)
        CACHE_FETCHES.labels(name).inc()
        CACHE_FETCH_SECONDS.labels(name).observe(seconds)
        _notify(signals.cache_fetch, self.app, name=name, key=key, seconds=seconds, ttl=ttl)

    @staticmethod
    def stored(key: str, ttl: int) -> None:
        log.info("SET %s ttl=%ss", key, ttl)

    def invalidated(self, name: str, key: str) -> None:
        self.buffer.add("invalidations", name)
        CACHE_INVALIDATIONS.labels(name).inc()
        log.info("INVALIDATE %s", key)
        _notify(signals.cache_invalidate, self.app, name=name, key=key)

    def failed(self, name: str, key: str, error: Exception) -> None:
        """A Redis call failed: the breaker decides (and logs), then it is counted."""
        self.breaker.trip(name, key, error)
        self.buffer.add("errors", name)
        CACHE_ERRORS.labels(name).inc()
        _notify(signals.cache_error, self.app, name=name, key=key, error=error)

    def bypassed(self, name: str, reason: str) -> None:
        CACHE_BYPASSES.labels(name).inc()
        log.info("BYPASS %s (%s)", name, reason)
        _notify(signals.cache_bypass, self.app, name=name, key=name, reason=reason)


class SharedStats:
    """The buffer pushed to the store, and the figures of every worker read back."""

    def __init__(self, store: Any, counting: Counting) -> None:
        self.store = store
        self.counting = counting
        self.breaker = counting.breaker

    def flush(self) -> None:
        """Push this process's counters to the shared store (requests that had any)."""
        buffer = self.counting.buffer
        if not buffer:
            return
        counts = buffer.take()
        if not self.breaker.closed:
            buffer.restore(counts)
            return
        try:
            self.store.add_stats(counts, f"{time.time():.6f}")
        except REDIS_ERRORS as exc:
            buffer.restore(counts)
            key = self.store.keys.stats_key() if self.store.shared else "stats"
            self.counting.failed("stats", key, exc)

    def read(self, reachable: bool) -> dict[str, Any]:
        """Totals, hit ratio, last update and per-name counters (`reachable`: ask the store)."""
        self.flush()
        raw: dict[str, int] = {}
        last_updated = None
        if reachable:
            try:
                raw, last_updated = self.store.read_stats()
            except REDIS_ERRORS as exc:
                self.counting.failed("stats", "stats", exc)
        if not self.breaker.closed:  # figures not yet pushed are still worth showing
            for k, n in self.counting.buffer.peek().items():
                raw[k] = raw.get(k, 0) + n
        if last_updated is not None:  # epoch seconds, from Redis' clock or ours
            last_updated = datetime.fromtimestamp(float(last_updated), UTC).isoformat()
        totals = {f: raw.get(f, 0) for f in STAT_FIELDS}
        lookups = totals["hits"] + totals["misses"]
        return {
            **totals,
            "hit_ratio": round(totals["hits"] / lookups, 4) if lookups else 0.0,
            "last_updated": last_updated,
            "families": {
                name: {f: raw.get(f"{f}:{name}", 0) for f in FAMILY_FIELDS} for name in REGISTRY
            },
        }
