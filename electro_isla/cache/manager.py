"""The CacheManager: cache-aside reads that are never stale after a commit.

Keys are versioned. Every cached name has a generation counter (and row
families one per row); a value's key embeds the generations read *before* its
data was fetched. Invalidation increments generations after the writer's
COMMIT, so a reader that fetched pre-commit data stores it under a generation
nobody asks for any more: a stale set is harmless by construction.

Concurrent misses of one key compute once: the first takes a lock (a Redis
lock shared by every worker, or a thread lock in-process), the others wait for
it and then read what it stored. A lock holder that dies frees the key when
the lock's timeout runs out.

Redis failures never fail a request: the manager answers from the database
(BYPASS), opens a circuit breaker so a dead Redis costs one quick probe per
interval, and keeps the invalidations it could not apply; it replays them
before it trusts the cache again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, g, has_request_context
from redis import Redis
from redis.exceptions import LockError, RedisError

from electro_isla.cache import signals
from electro_isla.cache.registry import REGISTRY, CachedName
from electro_isla.json import dumps

log = logging.getLogger("electro_isla.cache")

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
STAT_FIELDS = ("hits", "misses", "fetches", "invalidations", "errors")
MAX_PARAMS_IN_KEY = 120
_MISSING = object()


class CacheUnavailable(Exception):
    """Raised inside the manager when the shared store cannot be used now."""


class CircuitBreaker:
    """Closed until a failure; then open for `reset_seconds`, then one probe."""

    def __init__(self, reset_seconds: float) -> None:
        self.reset_seconds = reset_seconds
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.reset_seconds

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


class LocalStore:
    """Generations, locks and counters for the in-process cache (one process only)."""

    shared = False

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._gens: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._stats: Counter[str] = Counter()
        self._last_updated: str | None = None

    def generations(self, keys: list[str]) -> list[int]:
        with self._guard:
            return [self._gens.setdefault(k, time.time_ns()) for k in keys]

    def bump(self, keys: Iterable[str]) -> None:
        with self._guard:
            for k in keys:
                self._gens[k] = self._gens.get(k, time.time_ns()) + 1

    @contextmanager
    def lock(self, key: str, timeout: float):  # noqa: ANN201
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        acquired = lock.acquire(timeout=timeout)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def add_stats(self, counts: Counter[str], when: str) -> None:
        with self._guard:
            self._stats.update(counts)
            self._last_updated = when

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        with self._guard:
            return dict(self._stats), self._last_updated

    def delete_matching(self, backend: Any, pattern: str) -> int:
        keys = [k for k in list(backend._cache) if fnmatch.fnmatchcase(k, pattern)]
        for k in keys:
            backend._cache.pop(k, None)
        return len(keys)


class RedisStore:
    """Generations, locks and counters in Redis, shared by every worker process."""

    shared = True

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.stats_key = f"{prefix}:stats"

    def generations(self, keys: list[str]) -> list[int]:
        values = self.client.mget(keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        if missing:
            # A fresh counter starts at a clock value, never at a number an
            # evicted counter may have used before.
            pipe = self.client.pipeline(transaction=False)
            for k in missing:
                pipe.set(k, time.time_ns(), nx=True)
            pipe.execute()
            values = self.client.mget(keys)
        return [int(v) for v in values]

    def bump(self, keys: Iterable[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.incr(k)
        pipe.execute()

    @contextmanager
    def lock(self, key: str, timeout: float):  # noqa: ANN201
        lock = self.client.lock(key, timeout=timeout, sleep=0.01, blocking_timeout=timeout)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except LockError:
                    # Expired while fetching: someone else may own it now; leave it.
                    log.warning("LOCK expired before release %s", key)

    def add_stats(self, counts: Counter[str], when: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for field_name, n in counts.items():
            pipe.hincrby(self.stats_key, field_name, n)
        pipe.hset(self.stats_key, "last_updated", when)
        pipe.execute()

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        raw = self.client.hgetall(self.stats_key)
        decoded = {k.decode(): v.decode() for k, v in raw.items()}
        last = decoded.pop("last_updated", None)
        return {k: int(v) for k, v in decoded.items()}, last

    def delete_matching(self, backend: Any, pattern: str) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self.client.unlink(*batch)
                batch = []
        if batch:
            deleted += self.client.unlink(*batch)
        return deleted


class CacheManager:
    """Cache-aside reads, post-commit invalidation and statistics, per app."""

    def __init__(self, app: Flask, backend: Any, redis_client: Redis | None) -> None:
        self.app = app
        self.backend = backend
        self.prefix = app.config["CACHE_KEY_PREFIX"]
        self.enabled = app.config["CACHE_ENABLED"]
        self.lock_timeout = float(app.config["CACHE_LOCK_TIMEOUT"])
        self.store: RedisStore | LocalStore = (
            RedisStore(redis_client, self.prefix) if redis_client is not None else LocalStore()
        )
        self.backend_name = "redis" if redis_client is not None else "simple"
        self.breaker = CircuitBreaker(app.config["CACHE_CIRCUIT_RESET_SECONDS"])
        overrides = app.config.get("CACHE_TTL_OVERRIDES", {})
        self.ttls = {name: overrides.get(name, entry.ttl) for name, entry in REGISTRY.items()}
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self._stats_buffer: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    # -- keys ------------------------------------------------------------------

    def gen_key(self, name: str, row: object | None = None) -> str:
        return f"{self.prefix}:gen:{name}" if row is None else f"{self.prefix}:gen:{name}:{row}"

    def _params_part(self, entry: CachedName, params: Mapping[str, Any] | None) -> str:
        if not params:
            return "-"
        kept = sorted(
            (k, "" if v is None else str(v)) for k, v in params.items() if k in entry.params
        )
        part = urlencode(kept) or "-"
        if len(part) > MAX_PARAMS_IN_KEY:
            part = "h" + hashlib.sha256(part.encode()).hexdigest()[:32]
        return part

    def value_key(self, entry: CachedName, row: object | None, gens: list[int], params: str) -> str:
        """Key relative to the backend's prefix (Flask-Caching adds `prefix:`)."""
        version = ".".join(str(n) for n in gens)
        return f"v:{entry.name}:{'-' if row is None else row}:{version}:{params}"

    # -- reads -----------------------------------------------------------------

    def get(
        self,
        name: str,
        fetch: Callable[[], Any],
        *,
        row: object | None = None,
        params: Mapping[str, Any] | None = None,
        record: bool = True,
    ) -> Any:
        """Return the cached value of `name` (for `row`/`params`), computing it on a miss.

        `fetch` must return JSON-able data (Decimals and datetimes are rendered);
        the value returned is the JSON round trip, identical on HIT and MISS.
        `record=False` keeps this lookup out of the response's X-Cache header.
        """
        entry = REGISTRY[name]
        if (entry.row_table is None) != (row is None):
            raise ValueError(f"{name}: row is {'required' if entry.row_table else 'not allowed'}")
        if not self.enabled:
            return self._bypass(entry, fetch, record, reason="disabled")
        if not self._usable():
            return self._bypass(entry, fetch, record, reason="circuit open")
        params_part = self._params_part(entry, params)
        try:
            gen_keys = [self.gen_key(name)] + ([self.gen_key(name, row)] if row is not None else [])
            key = self.value_key(entry, row, self.store.generations(gen_keys), params_part)
            cached = self.backend.get(key)
        except RedisError as exc:
            self._failed(name, f"{name}:{row}", exc)
            return self._bypass(entry, fetch, record, reason="error")
        if cached is not None:
            self._event(HIT, entry, key, record)
            return cached
        self._event(MISS, entry, key, record)
        return self._fill(entry, key, fetch, record)

    def _fill(self, entry: CachedName, key: str, fetch: Callable[[], Any], record: bool) -> Any:
        full_key = f"{self.prefix}:{key}"
        value: Any = _MISSING
        try:
            with self.store.lock(f"{self.prefix}:lock:{key}", self.lock_timeout) as acquired:
                if acquired:
                    # Whoever held the lock before us may have stored it meanwhile.
                    cached = self.backend.get(key)
                    if cached is not None:
                        return cached
                value = self._fetch(entry, full_key, fetch)
                ttl = self.ttls[entry.name]
                self.backend.set(key, value, timeout=ttl)
                log.info("SET %s ttl=%ss", full_key, ttl)
                return value
        except RedisError as exc:
            self._failed(entry.name, full_key, exc)
            if record and has_request_context():
                g.cache_status = BYPASS
            return self._fetch(entry, full_key, fetch) if value is _MISSING else value

    def _fetch(self, entry: CachedName, key: str, fetch: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = json.loads(dumps(fetch()))
        seconds = time.perf_counter() - started
        self._count("fetches", entry.name)
        signals.cache_fetch.send(self.app, name=entry.name, key=key, seconds=seconds)
        return value

    def _bypass(
        self, entry: CachedName, fetch: Callable[[], Any], record: bool, reason: str
    ) -> Any:
        if record and has_request_context():
            g.cache_status = BYPASS
        signals.cache_bypass.send(self.app, name=entry.name, key=entry.name, reason=reason)
        return json.loads(dumps(fetch()))

    def _event(self, status: str, entry: CachedName, key: str, record: bool) -> None:
        if record and has_request_context():
            g.cache_status = status
        full_key = f"{self.prefix}:{key}"
        if status == HIT:
            self._count("hits", entry.name)
            signals.cache_hit.send(self.app, name=entry.name, key=full_key)
        else:
            self._count("misses", entry.name)
            signals.cache_miss.send(self.app, name=entry.name, key=full_key)

    # -- invalidation ------------------------------------------------------------

    def invalidate(
        self, names: Iterable[str] = (), rows: Iterable[tuple[str, object]] = ()
    ) -> None:
        """Invalidate whole names and/or (name, row) pairs, now.

        Callers inside a transaction should use `listeners.invalidate_after_commit`
        instead, so that a rollback keeps the cache as it was.
        """
        keys = {self.gen_key(n) for n in names} | {self.gen_key(n, r) for n, r in rows}
        if keys:
            self._apply(keys)

    def _apply(self, keys: set[str]) -> None:
        if self.enabled and self._usable():
            try:
                self.store.bump(sorted(keys))
            except RedisError as exc:
                self._failed("invalidate", ",".join(sorted(keys)), exc)
                self._remember(keys)
                return
            for key in sorted(keys):
                name = key.removeprefix(f"{self.prefix}:gen:").split(":", 1)[0]
                self._count("invalidations", name)
                signals.cache_invalidate.send(self.app, name=name, key=key)
        else:
            self._remember(keys)

    def _remember(self, keys: set[str]) -> None:
        with self._pending_lock:
            self._pending |= keys

    def _usable(self) -> bool:
        """True when the store may be used; replays lost invalidations first."""
        if self.breaker.is_open:
            return False
        with self._pending_lock:
            pending = set(self._pending)
        if not pending:
            return True
        try:
            self.store.bump(sorted(pending))
        except RedisError as exc:
            self._failed("invalidate", "pending", exc)
            return False
        with self._pending_lock:
            self._pending -= pending
        for key in sorted(pending):
            signals.cache_invalidate.send(self.app, name="pending", key=key)
        log.info("INVALIDATE replayed %d pending generation(s)", len(pending))
        return True

    def ping(self) -> bool:
        """True when the cache can be used right now (always, in-process)."""
        if not self.store.shared:
            return True
        try:
            self.store.client.ping()
        except RedisError as exc:
            self._failed("ping", "ping", exc)
            return False
        return self._usable()

    @property
    def pending_invalidations(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def _failed(self, name: str, key: str, exc: Exception) -> None:
        self.breaker.trip()
        self._count("errors", name)
        signals.cache_error.send(self.app, name=name, key=key, error=exc)

    # -- clearing ----------------------------------------------------------------

    def invalidate_pattern(self, pattern: str) -> int:
        """Delete cached values whose name matches the glob; never touches other keys."""
        names = [n for n in REGISTRY if fnmatch.fnmatchcase(n, pattern.split(":", 1)[0])]
        # Bump first: a reader already computing from older data stores a dead key.
        self.invalidate(names=names)
        try:
            deleted = self.store.delete_matching(self.backend, f"{self.prefix}:v:{pattern}")
        except RedisError as exc:
            self._failed("clear", pattern, exc)
            raise CacheUnavailable("the cache server is not answering") from exc
        log.info("INVALIDATE %s:v:%s deleted=%d", self.prefix, pattern, deleted)
        return deleted

    def clear_all(self) -> int:
        return self.invalidate_pattern("*")

    # -- statistics --------------------------------------------------------------

    def _count(self, stat: str, name: str) -> None:
        with self._stats_lock:
            self._stats_buffer[stat] += 1
            self._stats_buffer[f"{stat}:{name}"] += 1

    def flush_stats(self) -> None:
        """Push this process's counters to the shared store (once per request)."""
        with self._stats_lock:
            if not self._stats_buffer:
                return
            counts, self._stats_buffer = self._stats_buffer, Counter()
        if self.breaker.is_open:
            self._restore(counts)
            return
        try:
            self.store.add_stats(counts, datetime.now(UTC).isoformat())
        except RedisError as exc:
            self._restore(counts)
            self._failed("stats", self.store.stats_key if self.store.shared else "stats", exc)

    def _restore(self, counts: Counter[str]) -> None:
        with self._stats_lock:
            self._stats_buffer.update(counts)

    def get_stats(self) -> dict[str, Any]:
        self.flush_stats()
        try:
            raw, last_updated = self.store.read_stats() if self._usable() else ({}, None)
        except RedisError as exc:
            self._failed("stats", "stats", exc)
            raw, last_updated = {}, None
        totals = {f: raw.get(f, 0) for f in STAT_FIELDS}
        lookups = totals["hits"] + totals["misses"]
        families = {
            name: {
                f: raw.get(f"{f}:{name}", 0) for f in ("hits", "misses", "fetches", "invalidations")
            }
            for name in REGISTRY
        }
        return {
            "backend": self.backend_name,
            **totals,
            "hit_ratio": round(totals["hits"] / lookups, 4) if lookups else 0.0,
            "last_updated": last_updated,
            "families": families,
            "ttl": dict(self.ttls),
            "circuit_open": self.breaker.is_open,
            "pending_invalidations": self.pending_invalidations,
        }
