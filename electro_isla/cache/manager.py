"""The CacheManager: cache-aside reads that are never stale after a commit.

Keys are versioned. Every cached name has a generation counter (and row
families one per row); a value's key embeds the generations read *before* its
data was fetched. Invalidation increments generations after the writer's
COMMIT, so a reader that fetched pre-commit data stores it under a generation
nobody asks for any more: a stale set is harmless by construction. A reader
inside a transaction with uncommitted writes to what it reads never stores
(its data may yet be rolled back).

On Redis a lookup is one round trip: a Lua script reads the generations, the
value and counts the hit or miss. Concurrent misses of one key compute once:
the first takes a lock (a Redis lock shared by every worker, or a thread lock
in-process), the others poll for the value it stores. A lock holder that dies
frees the key when the lock's timeout runs out, and nobody waits longer.

Redis failures never fail a request: the manager answers from the database
(BYPASS) and opens a circuit breaker, so a dead Redis costs one quick probe per
interval. Invalidations it could not apply (or that no replica acknowledged,
with Sentinel) are kept in the `cache_pending` table every host shares (the
host's marker file, then memory, if the database does not take them):
whichever worker of whichever host next reaches Redis replays them before it
trusts the cache. See `pending` for the bound on how soon another host sees them.

Failovers: with Sentinel a bump counts once a replica has it (WAIT), so the
old master's writes that a promotion is about to throw away are replayed on
the new one. The deployment docs recommend `min-replicas-to-write 1` too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, g, has_app_context, has_request_context
from redis import Redis
from redis.exceptions import LockError
from sqlalchemy import inspect as sa_inspect

from electro_isla.cache import signals
from electro_isla.cache.breaker import REDIS_ERRORS, CircuitBreaker
from electro_isla.cache.composed import ComposedPages
from electro_isla.cache.keys import KeySpace, KeySpec
from electro_isla.cache.pending import PendingInvalidations, SharedPending
from electro_isla.cache.registry import REGISTRY, CachedName
from electro_isla.cache.stats import StatsBuffer
from electro_isla.cache.stores import KeyLock, LocalStore, RedisStore
from electro_isla.json import dumps, loads

log = logging.getLogger("electro_isla.cache")

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
STAT_FIELDS = ("hits", "misses", "fetches", "invalidations", "errors")
FAMILY_FIELDS = ("hits", "misses", "fetches", "invalidations")


class CacheUnavailable(Exception):
    """Raised by clearing operations when the shared store cannot be used now."""


def _rendering(fetch: Callable[[], Any], render: Callable[[Any], Any]) -> Callable[[], Any]:
    """fetch() normalised the way a plain value is, then rendered."""
    return lambda: render(loads(dumps(fetch())))


class CacheManager:
    """Cache-aside reads, post-commit invalidation and statistics, per app."""

    def __init__(self, app: Flask, backend: Any, redis_client: Redis | None) -> None:
        self.app = app
        self.backend = backend
        self.prefix = app.config["CACHE_KEY_PREFIX"]
        self.keys = KeySpace(self.prefix)
        self.enabled = app.config["CACHE_ENABLED"]
        self.lock_timeout = float(app.config["CACHE_LOCK_TIMEOUT"])
        self.lock_wait = min(self.lock_timeout, float(app.config["CACHE_LOCK_WAIT_SECONDS"]))
        # Off only to measure what the lock saves (bench, tests).
        self.lock_enabled = bool(app.config.get("CACHE_LOCK_ENABLED", True))
        overrides = app.config.get("CACHE_TTL_OVERRIDES", {})
        self.ttls = {name: overrides.get(name, entry.ttl) for name, entry in REGISTRY.items()}
        # Generation counters outlive every value that embeds them, then expire.
        self.gen_ttl = max(self.ttls.values())
        self.store: RedisStore | LocalStore
        self._db_engine: Any = None
        if redis_client is not None:
            wait = app.config.get("CACHE_WAIT_REPLICAS")
            if wait is None:
                wait = 1 if app.config.get("REDIS_MODE") == "sentinel" else 0
            self.store = RedisStore(
                redis_client,
                self.prefix,
                self.gen_ttl,
                int(wait),
                int(app.config["CACHE_WAIT_TIMEOUT_MS"]),
            )
            self.backend_name = "redis"
            shared = SharedPending(
                self._engine, self.prefix, float(app.config["CACHE_PENDING_CHECK_MS"]) / 1000
            )
            self.pending = PendingInvalidations(self._pending_path(app), shared)
        else:
            self.store = LocalStore(self.gen_ttl)
            self.backend_name = "simple"
            self.pending = PendingInvalidations(None)
        self.breaker = CircuitBreaker(app.config["CACHE_CIRCUIT_RESET_SECONDS"])
        self.counts = StatsBuffer()
        # Composed names (catalogue pages): id lists plus per-row fragments.
        self.pages = ComposedPages(self)

    def _engine(self) -> Any:
        """The app's database engine (the pending table lives there), resolved once."""
        if self._db_engine is None:
            from electro_isla.extensions import db

            with self.app.app_context():
                self._db_engine = db.engine
        return self._db_engine

    def _pending_path(self, app: Flask) -> Path:
        """One marker file per (prefix, Redis server), shared by the host's workers."""
        folder = app.config.get("CACHE_PENDING_DIR") or os.path.join(
            tempfile.gettempdir(), "electro_isla-cache"
        )
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.prefix)
        where = app.config.get("REDIS_URL")
        if app.config.get("REDIS_MODE") == "sentinel":
            where = f"{app.config['REDIS_SENTINELS']}/{app.config['REDIS_SENTINEL_MASTER']}"
        server = hashlib.sha256(str(where).encode()).hexdigest()[:10]
        return Path(folder) / f"{safe}-{server}.pending"

    # -- keys ------------------------------------------------------------------

    def gen_key(self, name: str, row: object | None = None) -> str:
        return self.keys.gen_key(name, row)

    def value_key(self, spec: KeySpec, gens: Iterable[int | str]) -> str:
        return self.keys.value_key(spec, gens)

    def key_for(
        self, name: str, row: object | None = None, params: Mapping[str, Any] | None = None
    ) -> str:
        """The full Redis key a lookup of (name, row, params) would use right now."""
        spec = self.keys.spec(name, row, params)
        return f"{self.prefix}:{self.value_key(spec, self.store.generations(spec.gen_keys))}"

    # -- reads -----------------------------------------------------------------

    def get(
        self,
        name: str,
        fetch: Callable[[], Any],
        *,
        row: object | None = None,
        params: Mapping[str, Any] | None = None,
        record: bool = True,
        render: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Return the cached value of `name` (for `row`/`params`), computing it on a miss.

        `fetch` must return JSON-able data (Decimals and datetimes are rendered);
        the value returned is the JSON round trip, identical on HIT and MISS.
        `record=False` keeps this lookup out of the response's X-Cache header.

        `render` (JSON round trip of fetch() -> JSON-able) is applied once, at
        fetch time, and its result is what is cached and returned: a HIT then
        skips the work render does (e.g. dumping the response body and hashing
        its ETag). It is stored beside the plain value, under the same
        generations, so it is exactly as fresh.

        A composed name's pages go through `self.pages` (cache/composed.py): a
        value stored here under such a name follows only its membership columns.
        """
        spec = self.keys.spec(name, row, params)
        if render is not None:
            # "|" never occurs in a params part (urlencoded, "-" or "h<hex>").
            spec = KeySpec(spec.entry, spec.row, f"{spec.params}|r", spec.gen_keys)
            fetch = _rendering(fetch, render)
        if not self.enabled:
            return self._bypass(spec.entry, fetch, record, reason="disabled")
        if not self._usable():
            return self._bypass(spec.entry, fetch, record, reason="circuit open")
        try:
            key, cached = self._lookup(spec)
        except REDIS_ERRORS as exc:
            self._failed(name, f"{self.prefix}:{self.value_key(spec, ['?'])}", exc)
            return self._bypass(spec.entry, fetch, record, reason="error")
        self.breaker.success()
        if cached is not None:
            self._event(HIT, spec.entry, key, record)
            return cached
        self._event(MISS, spec.entry, key, record)
        return self._fill(spec, key, fetch, record)

    def _lookup(self, spec: KeySpec) -> tuple[str, Any]:
        """(key, value or None), counting the hit or miss; one round trip on Redis."""
        store = self.store
        if isinstance(store, RedisStore):
            head, tail = self.keys.parts(spec)
            version, raw = store.lookup(spec.gen_keys, spec.params)
            key = f"{head}{version.decode()}{tail}"
            return key, None if raw is None else self.backend.serializer.loads(raw)
        key = self.value_key(spec, store.generations(spec.gen_keys))
        cached = self.backend.get(key)
        self._count("hits" if cached is not None else "misses", spec.entry.name)
        return key, cached

    def _fill(self, spec: KeySpec, key: str, fetch: Callable[[], Any], record: bool) -> Any:
        """Compute a missing value once per burst and store it under `key`."""
        entry = spec.entry
        full_key = f"{self.prefix}:{key}"
        storable = not self._uncommitted_writes(entry)
        value: Any = None
        computed = False
        try:
            if not (self.lock_enabled and storable):
                value, computed = self._fetch(entry, full_key, fetch), True
                if storable:
                    self._store(entry, key, full_key, value)
                return value
            lock = self.store.lock(f"{self.prefix}:lock:{key}", self.lock_timeout)
            deadline = time.monotonic() + self.lock_wait
            pause = 0.005
            while True:
                if lock.acquire(blocking=False):
                    try:
                        # Whoever held the lock before us may have stored it meanwhile.
                        cached = self.backend.get(key)
                        if cached is not None:
                            return cached
                        value, computed = self._fetch(entry, full_key, fetch), True
                        self._store(entry, key, full_key, value)
                        return value
                    finally:
                        self._release(lock, full_key)
                cached = self.backend.get(key)
                if cached is not None:
                    return cached
                if time.monotonic() >= deadline:
                    # The holder is slow, dead, or its lock was lost: stop waiting for it.
                    log.warning("LOCK wait timed out %s", full_key)
                    value, computed = self._fetch(entry, full_key, fetch), True
                    self._store(entry, key, full_key, value)
                    return value
                time.sleep(pause)
                pause = min(pause * 1.5, 0.05)
        except REDIS_ERRORS as exc:
            self._failed(entry.name, full_key, exc)
            if record and has_request_context():
                g.cache_status = BYPASS
            return value if computed else self._fetch(entry, full_key, fetch)

    def _store(self, entry: CachedName, key: str, full_key: str, value: Any) -> None:
        ttl = self.ttls[entry.name]
        self.backend.set(key, value, timeout=ttl)
        log.info("SET %s ttl=%ss", full_key, ttl)

    @staticmethod
    def _release(lock: KeyLock, full_key: str) -> None:
        try:
            lock.release()
        except LockError:
            # Expired while fetching: someone else may own it now; leave it.
            log.warning("LOCK expired before release %s", full_key)

    def _uncommitted_writes(self, entry: CachedName) -> bool:
        """True when this context's session has unflushed or uncommitted writes `entry` reads.

        Such a fetch may see rows that are later rolled back; it is returned
        to its caller but never stored for others.
        """
        if not has_app_context():
            return False
        from electro_isla.cache.listeners import pending_tables
        from electro_isla.extensions import db

        session = db.session()
        tables = pending_tables(session)
        for obj in (*session.new, *session.dirty, *session.deleted):
            tables.update(t.name for t in sa_inspect(obj).mapper.tables)
        return any(t in entry.tables or t == entry.row_table for t in tables)

    def _fetch(self, entry: CachedName, key: str, fetch: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = loads(dumps(fetch()))
        seconds = time.perf_counter() - started
        self._count("fetches", entry.name)
        signals.cache_fetch.send(
            self.app, name=entry.name, key=key, seconds=seconds, ttl=self.ttls[entry.name]
        )
        return value

    def _bypass(
        self, entry: CachedName, fetch: Callable[[], Any], record: bool, reason: str
    ) -> Any:
        if record and has_request_context():
            g.cache_status = BYPASS
        signals.cache_bypass.send(self.app, name=entry.name, key=entry.name, reason=reason)
        return loads(dumps(fetch()))

    def _event(self, status: str, entry: CachedName, key: str, record: bool) -> None:
        if record and has_request_context():
            g.cache_status = status
        full_key = f"{self.prefix}:{key}"
        signal = signals.cache_hit if status == HIT else signals.cache_miss
        signal.send(self.app, name=entry.name, key=full_key)

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

    def _name_of(self, gen_key: str) -> str:
        return self.keys.name_of(gen_key)

    def _apply(self, keys: set[str]) -> None:
        if not self.enabled:  # nothing is cached, nothing to invalidate
            return
        if not self._usable():
            self._remember(keys)
            return
        try:
            self.store.bump(sorted(keys))
        except REDIS_ERRORS as exc:
            self._failed("invalidate", ",".join(sorted(keys)), exc)
            self._remember(keys)
            return
        self.breaker.success()
        self._applied(keys)

    def _applied(self, keys: Iterable[str]) -> None:
        """Every bump that reached the store passes here (post-commit and replays)."""
        keys = sorted(keys)
        names = set()
        for key in keys:
            name = self._name_of(key)
            names.add(name)
            self._count("invalidations", name)
            signals.cache_invalidate.send(self.app, name=name, key=key)
        signals.generations_bumped.send(self.app, names=frozenset(names), keys=tuple(keys))

    def _remember(self, keys: set[str]) -> None:
        self.pending.add(keys)
        log.warning("INVALIDATE pending (cache unavailable) %s", ",".join(sorted(keys)))

    def _usable(self) -> bool:
        """True when the store may be used; replays lost invalidations first."""
        if not self.breaker.allow():
            return False
        if self.pending.empty():
            return True
        pending = self.pending.snapshot()
        if not pending:
            return True
        try:
            self.store.bump(sorted(pending.keys))
        except REDIS_ERRORS as exc:
            self._failed("invalidate", "pending", exc)
            return False
        self.breaker.success()
        self.pending.done(pending)
        self._applied(pending.keys)
        log.info("INVALIDATE replayed %d pending generation(s)", len(pending))
        return True

    def ping(self) -> bool:
        """True when the cache can be used right now (always, in-process)."""
        if not self.store.shared:
            return True
        if not self.breaker.allow():
            return False
        try:
            self.store.client.ping()
        except REDIS_ERRORS as exc:
            self._failed("ping", "ping", exc)
            return False
        self.breaker.success()
        return self._usable()

    @property
    def pending_invalidations(self) -> int:
        return 0 if self.pending.empty() else len(self.pending)

    def _failed(self, name: str, key: str, exc: Exception) -> None:
        self.breaker.trip(name, key, exc)
        self._count("errors", name)
        signals.cache_error.send(self.app, name=name, key=key, error=exc)

    # -- clearing ----------------------------------------------------------------

    def invalidate_pattern(self, pattern: str) -> int:
        """Delete cached values matching the glob (SCAN + UNLINK); never touches other keys.

        The glob applies to `<name>:<row>:…`; a pattern without a trailing `*`
        means that name (or name:row) exactly. Matching names are invalidated
        first, so a reader already computing from older data stores a dead key.
        """
        names = [n for n in REGISTRY if fnmatch.fnmatchcase(n, pattern.split(":", 1)[0])]
        self.invalidate(names=names)
        if not self._usable():
            raise CacheUnavailable("the cache server is not answering")
        glob = self.keys.entry_glob(pattern)
        try:
            deleted = self.store.delete_matching(self.backend, self.prefix, glob)
        except REDIS_ERRORS as exc:
            self._failed("clear", pattern, exc)
            raise CacheUnavailable("the cache server is not answering") from exc
        log.info("INVALIDATE %s:%s deleted=%d", self.prefix, glob, deleted)
        return deleted

    def clear_all(self) -> int:
        return self.invalidate_pattern("*")

    # -- statistics --------------------------------------------------------------

    def _count(self, stat: str, name: str) -> None:
        self.counts.add(stat, name)

    def flush_stats(self) -> None:
        """Push this process's counters to the shared store (requests that had any)."""
        if not self.counts:
            return
        counts = self.counts.take()
        if not self.breaker.closed:
            self.counts.restore(counts)
            return
        try:
            self.store.add_stats(counts, f"{time.time():.6f}")
        except REDIS_ERRORS as exc:
            self.counts.restore(counts)
            self._failed("stats", self.store.stats_key if self.store.shared else "stats", exc)

    def get_stats(self) -> dict[str, Any]:
        """Totals and per-name counters of every worker sharing the store."""
        self.flush_stats()
        raw: dict[str, int] = {}
        last_updated = None
        if self._usable():
            try:
                raw, last_updated = self.store.read_stats()
            except REDIS_ERRORS as exc:
                self._failed("stats", "stats", exc)
        if not self.breaker.closed:  # figures not yet pushed are still worth showing
            for k, n in self.counts.peek().items():
                raw[k] = raw.get(k, 0) + n
        if last_updated is not None:  # epoch seconds, from Redis' clock or ours
            last_updated = datetime.fromtimestamp(float(last_updated), UTC).isoformat()
        totals = {f: raw.get(f, 0) for f in STAT_FIELDS}
        lookups = totals["hits"] + totals["misses"]
        families = {
            name: {f: raw.get(f"{f}:{name}", 0) for f in FAMILY_FIELDS} for name in REGISTRY
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
