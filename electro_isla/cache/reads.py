"""The read pipeline every cached name goes through, plain or composed.

    admit ──(disabled, circuit open, outbox not drained)──> bypass: answer from the DB
      │
    lookup ── HIT ──> the stored value
      │
    MISS ──> fill: the first reader of a key takes its lock, fetches and stores;
             the others poll for the value it stores (single flight)

Keys are versioned (keys.py): a lookup reads the generations *before* the fetch,
so a reader that fetched pre-commit data stores it under a generation nobody
asks for any more. A reader whose own session has uncommitted writes to what it
reads never stores (its data may yet be rolled back). A Redis error at any step
answers from the database (BYPASS) and opens the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import g, has_app_context, has_request_context
from redis.exceptions import LockError
from sqlalchemy import inspect as sa_inspect

from electro_isla.cache.ahead import take
from electro_isla.cache.invalidation import Invalidation
from electro_isla.cache.keys import KeySpec
from electro_isla.cache.listeners import pending_tables
from electro_isla.cache.registry import CachedName
from electro_isla.cache.stores import Parts
from electro_isla.extensions import db
from electro_isla.json import dumps, loads
from electro_isla.shared_store import REDIS_ERRORS

log = logging.getLogger("electro_isla.cache")

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"


def uncommitted_writes(entry: CachedName) -> bool:
    """True when this context's session has unflushed or uncommitted writes `entry` reads.

    Such a fetch may see rows that are later rolled back; it is returned to its
    caller but never stored for others.
    """
    if not has_app_context():
        return False
    session = db.session()
    tables = pending_tables(session)
    for obj in (*session.new, *session.dirty, *session.deleted):
        tables.update(t.name for t in sa_inspect(obj).mapper.tables)
    return any(t in entry.tables or t == entry.row_table for t in tables)


def record_status(status: str, record: bool) -> None:
    """What the response's X-Cache header will say (`record=False`: this read does not)."""
    if record and has_request_context():
        g.cache_status = status


class ReadPipeline:
    """The steps of a cached read (see the module docstring), shared by every name."""

    def __init__(self, parts: Parts, invalidation: Invalidation, config: dict[str, Any]) -> None:
        self.parts = parts
        self.invalidation = invalidation
        self.enabled = config["CACHE_ENABLED"]
        self.lock_timeout = float(config["CACHE_LOCK_TIMEOUT"])
        self.lock_wait = min(self.lock_timeout, float(config["CACHE_LOCK_WAIT_SECONDS"]))
        # Off only to measure what the lock saves (bench, tests).
        self.lock_enabled = bool(config.get("CACHE_LOCK_ENABLED", True))

    # -- the gate ------------------------------------------------------------------

    def admit(self) -> str | None:
        """None when this read may use the store; else why it must bypass it.

        The outbox drain is an explicit step here: a store that still owes
        bumps another process recorded is not trusted until they are applied.
        """
        if not self.enabled:
            return "disabled"
        if not self.parts.breaker.allow() or not self.invalidation.catch_up():
            return "circuit open"
        return None

    def bypass(
        self, entry: CachedName, direct: Callable[[], Any], record: bool, reason: str
    ) -> Any:
        """Answer from the database, nothing stored."""
        record_status(BYPASS, record)
        self.parts.counting.bypassed(entry.name, reason)
        return loads(dumps(direct()))

    def failed(self, name: str, key: str, exc: Exception) -> None:
        self.parts.counting.failed(name, key, exc)

    # -- lookup --------------------------------------------------------------------

    def looked_up(
        self, entry: CachedName, key: str, hit: bool, counted: bool, record: bool
    ) -> None:
        """Say HIT or MISS (header, counters, log) for a lookup of `key` (relative)."""
        record_status(HIT if hit else MISS, record)
        self.parts.counting.looked_up(entry.name, self.parts.keys.full(key), hit, counted)

    def read(self, spec: KeySpec, fetch: Callable[[], Any], record: bool) -> Any:
        """A plain value: admit, look up, HIT or fill; bypass on any Redis error."""
        entry = spec.entry
        reason = self.admit()
        if reason is not None:
            return self.bypass(entry, fetch, record, reason)
        try:
            # Made in the token check's round trip when this request asked ahead.
            found = take(spec) or self.parts.store.lookup(spec)
        except REDIS_ERRORS as exc:
            self.failed(
                entry.name, self.parts.keys.full(self.parts.keys.value_key(spec, ["?"])), exc
            )
            return self.bypass(entry, fetch, record, reason="error")
        self.parts.breaker.success()
        self.looked_up(entry, found.key, found.value is not None, found.counted, record)
        if found.value is not None:
            return found.value
        return self.fill(spec, found.key, fetch, record)

    # -- fill ------------------------------------------------------------------------

    def fetch(self, entry: CachedName, key: str, fetch: Callable[[], Any]) -> Any:
        """Run `fetch` (counted and timed); its result as JSON reads it back."""
        started = time.perf_counter()
        value = loads(dumps(fetch()))
        seconds = time.perf_counter() - started
        self.parts.counting.fetched(entry.name, key, seconds, self.parts.ttls[entry.name])
        return value

    def store_value(self, entry: CachedName, key: str, value: Any) -> None:
        ttl = self.parts.ttls[entry.name]
        self.parts.store.set(key, value, ttl)
        self.parts.counting.stored(self.parts.keys.full(key), ttl)

    def fill(self, spec: KeySpec, key: str, fetch: Callable[[], Any], record: bool) -> Any:
        """Compute a missing value once per burst and store it under `key`."""
        entry = spec.entry
        full_key = self.parts.keys.full(key)
        storable = not uncommitted_writes(entry)
        value: Any = None
        computed = False
        try:
            if not (self.lock_enabled and storable):
                value, computed = self.fetch(entry, full_key, fetch), True
                if storable:
                    self.store_value(entry, key, value)
                return value
            lock = self.parts.store.lock(self.parts.keys.lock_key(key), self.lock_timeout)
            deadline = time.monotonic() + self.lock_wait
            pause = 0.005
            while True:
                if lock.acquire(blocking=False):
                    try:
                        # Whoever held the lock before us may have stored it meanwhile.
                        cached = self.parts.store.get(key)
                        if cached is not None:
                            return cached
                        value, computed = self.fetch(entry, full_key, fetch), True
                        self.store_value(entry, key, value)
                        return value
                    finally:
                        _release(lock, full_key)
                cached = self.parts.store.get(key)
                if cached is not None:
                    return cached
                if time.monotonic() >= deadline:
                    # The holder is slow, dead, or its lock was lost: stop waiting for it.
                    log.warning("LOCK wait timed out %s", full_key)
                    value, computed = self.fetch(entry, full_key, fetch), True
                    self.store_value(entry, key, value)
                    return value
                time.sleep(pause)
                pause = min(pause * 1.5, 0.05)
        except REDIS_ERRORS as exc:
            self.failed(entry.name, full_key, exc)
            record_status(BYPASS, record)
            return value if computed else self.fetch(entry, full_key, fetch)


def _release(lock: Any, full_key: str) -> None:
    try:
        lock.release()
    except LockError:
        # Expired while fetching: someone else may own it now; leave it.
        log.warning("LOCK expired before release %s", full_key)
