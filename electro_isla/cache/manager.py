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
interval. Invalidations it could not apply are kept in memory *and* in a
marker file that every worker on the host checks (one stat() per lookup):
whichever worker next reaches Redis replays them before it trusts the cache.

Known window: the marker file is per host. A worker on *another* host that
never saw the outage can serve an entry the lost invalidation should have
killed, from the moment Redis answers again until a worker of the failing host
uses the cache (its next request) or the entry's TTL ends. Killing Redis
(no persistence) loses the entries with the counters, so only a hung or
partitioned Redis opens that window.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import Flask, g, has_app_context, has_request_context
from redis import Redis
from redis.exceptions import LockError, NoScriptError, RedisError
from sqlalchemy import inspect as sa_inspect

from electro_isla.cache import signals
from electro_isla.cache.registry import REGISTRY, CachedName
from electro_isla.json import dumps

log = logging.getLogger("electro_isla.cache")

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
STAT_FIELDS = ("hits", "misses", "fetches", "invalidations", "errors")
FAMILY_FIELDS = ("hits", "misses", "fetches", "invalidations")
MAX_PARAMS_IN_KEY = 120
GLOB_CHARS = re.compile(r"([*?\[\]\\])")

# KEYS: the name's generation counter `<prefix>:gen:<name>` and, for a row family,
# the row's `<prefix>:gen:<name>:<row>`. ARGV[1]: the params part of the key. The
# value key and the stats hash are derived here, so the client packs few arguments.
# Returns {generations joined by ".", raw value or nil}. A missing counter is seeded
# from the server clock in nanoseconds, never from a number an evicted one may have used.
LOOKUP_SCRIPT = """
local prefix, name = string.match(KEYS[1], '^(.*):gen:([^:]+)$')
local row = '-'
if KEYS[2] then row = string.sub(KEYS[2], #KEYS[1] + 2) end
local gens = redis.call('MGET', unpack(KEYS))
local now = redis.call('TIME')
for i = 1, #KEYS do
  if not gens[i] then
    redis.call('SET', KEYS[i], now[1] .. string.format('%06d', now[2]) .. '000', 'NX')
    gens[i] = redis.call('GET', KEYS[i])
  end
end
local version = table.concat(gens, '.')
local value = redis.call('GET', prefix .. ':v:' .. name .. ':' .. row .. ':' .. version .. ':' .. ARGV[1])
local field = 'misses'
if value then field = 'hits' end
local stats = prefix .. ':stats'
redis.call('HINCRBY', stats, field, 1)
redis.call('HINCRBY', stats, field .. ':' .. name, 1)
redis.call('HSET', stats, 'last_updated', now[1] .. '.' .. string.format('%06d', now[2]))
return {version, value}
"""


class CacheUnavailable(Exception):
    """Raised by clearing operations when the shared store cannot be used now."""


class CircuitBreaker:
    """Closed until a failure; open for `reset_seconds`; then one caller probes.

    While one probe is in flight the others keep bypassing, so a hung server
    costs one socket timeout per interval and process, not one per request.
    """

    def __init__(self, reset_seconds: float) -> None:
        self.reset_seconds = reset_seconds
        self._open_until = 0.0  # 0.0 means closed
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._open_until == 0.0

    @property
    def is_open(self) -> bool:
        return not self.closed

    def allow(self) -> bool:
        if self._open_until == 0.0:
            return True
        now = time.monotonic()
        with self._lock:
            if self._open_until == 0.0:
                return True
            if now < self._open_until:
                return False
            self._open_until = now + self.reset_seconds  # this caller is the probe
            return True

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.reset_seconds

    def success(self) -> None:
        if self._open_until != 0.0:
            with self._lock:
                self._open_until = 0.0


class KeyLock(Protocol):
    def acquire(self, blocking: bool = ...) -> bool: ...  # pragma: no cover

    def release(self) -> None: ...  # pragma: no cover


class PendingInvalidations:
    """Generation bumps that failed, kept in a file every worker of the host sees.

    The file is the durable part: a worker that never saw the outage, or a
    replacement of the worker that failed, finds it and replays it before it
    serves anything from the cache. Memory is the fallback when there is no file.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._path_str = None if path is None else str(path)
        self._memory: set[str] = set()
        self._lock = threading.Lock()

    def empty(self) -> bool:
        return not self._memory and (self._path_str is None or not os.path.exists(self._path_str))

    def __len__(self) -> int:
        return len(self.snapshot())

    def add(self, keys: Iterable[str]) -> None:
        keys = set(keys)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                while True:
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fcntl.flock(fh, fcntl.LOCK_EX)
                        # A replayer may have unlinked the file while we waited for
                        # the lock: writing to that inode would lose the keys.
                        try:
                            same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
                        except FileNotFoundError:
                            same = False
                        if same:
                            fh.write("".join(f"{k}\n" for k in sorted(keys)))
                            return
            except OSError as exc:
                log.warning("ERROR pending file %s: %s", self.path, exc)
        # No file (or it failed): only this process knows, and replays them itself.
        with self._lock:
            self._memory |= keys

    def snapshot(self) -> set[str]:
        with self._lock:
            keys = set(self._memory)
        if self.path is not None:
            try:
                keys |= {line for line in self.path.read_text("utf-8").splitlines() if line}
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("ERROR pending file %s: %s", self.path, exc)
        return keys

    def done(self, keys: set[str]) -> None:
        """Forget `keys` (replayed); keeps what another worker added meanwhile."""
        with self._lock:
            self._memory -= keys
        if self.path is None:
            return
        try:
            with open(self.path, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                left = [line for line in fh.read().splitlines() if line and line not in keys]
                if left:
                    fh.seek(0)
                    fh.truncate()
                    fh.write("".join(f"{k}\n" for k in left))
                else:
                    # Unlink while holding the lock: a concurrent `add` either wrote
                    # before (and was read) or reopens a new file after.
                    self.path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("ERROR pending file %s: %s", self.path, exc)


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

    def lock(self, key: str, timeout: float) -> KeyLock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def add_stats(self, counts: Counter[str], when: str) -> None:
        with self._guard:
            self._stats.update(counts)
            self._last_updated = when

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        with self._guard:
            return dict(self._stats), self._last_updated

    def delete_matching(self, backend: Any, prefix: str, pattern: str) -> int:
        # SimpleCache keeps keys without the prefix; one process, one app.
        glob = f"v:{pattern}"
        keys = [k for k in list(backend._cache) if fnmatch.fnmatchcase(k, glob)]
        for k in keys:
            backend._cache.pop(k, None)
        return len(keys)


class RedisStore:
    """Generations, locks and counters in Redis, shared by every worker process."""

    shared = True

    def __init__(self, client: Redis, prefix: str, atomic: bool) -> None:
        self.client = client
        self.stats_key = f"{prefix}:stats"
        # Cluster mode cannot run a script over keys of several slots.
        self.lookup_script = client.register_script(LOOKUP_SCRIPT) if atomic else None

    def lookup(self, keys: list[str], params: str) -> tuple[bytes, bytes | None]:
        """Run the lookup script: EVALSHA straight away (fewest arguments to pack)."""
        script = self.lookup_script
        assert script is not None
        try:
            return self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, params)
        except NoScriptError:  # the server restarted or was flushed since
            script.sha = self.client.script_load(script.script)
            return self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, params)

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
        # A missing counter is seeded from the clock first: INCR alone would restart
        # it at 1, a number whose old values may still be stored.
        seed = time.time_ns()
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, seed, nx=True)
            pipe.incr(k)
        pipe.execute()

    def lock(self, key: str, timeout: float) -> KeyLock:
        return self.client.lock(key, timeout=timeout, thread_local=False)

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

    def delete_matching(self, backend: Any, prefix: str, pattern: str) -> int:
        # The prefix is literal even if it holds glob characters.
        glob = GLOB_CHARS.sub(r"\\\1", prefix) + f":v:{pattern}"
        deleted = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=glob, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self.client.unlink(*batch)
                batch = []
        if batch:
            deleted += self.client.unlink(*batch)
        return deleted


@dataclass(frozen=True)
class KeySpec:
    """What identifies one cached value, before the generations are known."""

    entry: CachedName
    row: object | None
    params: str
    gen_keys: list[str]


def _rendering(fetch: Callable[[], Any], render: Callable[[Any], Any]) -> Callable[[], Any]:
    """fetch() normalised the way a plain value is, then rendered."""
    return lambda: render(json.loads(dumps(fetch())))


class CacheManager:
    """Cache-aside reads, post-commit invalidation and statistics, per app."""

    def __init__(self, app: Flask, backend: Any, redis_client: Redis | None) -> None:
        self.app = app
        self.backend = backend
        self.prefix = app.config["CACHE_KEY_PREFIX"]
        self.enabled = app.config["CACHE_ENABLED"]
        self.lock_timeout = float(app.config["CACHE_LOCK_TIMEOUT"])
        # Off only to measure what the lock saves (bench, tests).
        self.lock_enabled = bool(app.config.get("CACHE_LOCK_ENABLED", True))
        self.store: RedisStore | LocalStore
        if redis_client is not None:
            atomic = app.config.get("REDIS_MODE", "standalone") != "cluster"
            self.store = RedisStore(redis_client, self.prefix, atomic)
            self.backend_name = "redis"
            self.pending = PendingInvalidations(self._pending_path(app))
        else:
            self.store = LocalStore()
            self.backend_name = "simple"
            self.pending = PendingInvalidations(None)
        self.breaker = CircuitBreaker(app.config["CACHE_CIRCUIT_RESET_SECONDS"])
        overrides = app.config.get("CACHE_TTL_OVERRIDES", {})
        self.ttls = {name: overrides.get(name, entry.ttl) for name, entry in REGISTRY.items()}
        self._stats_buffer: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def _pending_path(self, app: Flask) -> Path:
        """One marker file per (prefix, Redis server), shared by the host's workers."""
        folder = app.config.get("CACHE_PENDING_DIR") or os.path.join(
            tempfile.gettempdir(), "electro_isla-cache"
        )
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.prefix)
        server = hashlib.sha256(str(app.config.get("REDIS_URL")).encode()).hexdigest()[:10]
        return Path(folder) / f"{safe}-{server}.pending"

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

    def _spec(self, name: str, row: object | None, params: Mapping[str, Any] | None) -> KeySpec:
        entry = REGISTRY[name]
        if (entry.row_table is None) != (row is None):
            raise ValueError(f"{name}: row is {'required' if entry.row_table else 'not allowed'}")
        gen_keys = [self.gen_key(name)] + ([self.gen_key(name, row)] if row is not None else [])
        return KeySpec(entry, row, self._params_part(entry, params), gen_keys)

    @staticmethod
    def _key_parts(spec: KeySpec) -> tuple[str, str]:
        row = "-" if spec.row is None else spec.row
        return f"v:{spec.entry.name}:{row}:", f":{spec.params}"

    def value_key(self, spec: KeySpec, gens: Iterable[int | str]) -> str:
        """Key relative to the backend's prefix (Flask-Caching adds `prefix:`)."""
        head, tail = self._key_parts(spec)
        return head + ".".join(str(n) for n in gens) + tail

    def key_for(
        self, name: str, row: object | None = None, params: Mapping[str, Any] | None = None
    ) -> str:
        """The full Redis key a lookup of (name, row, params) would use right now."""
        spec = self._spec(name, row, params)
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
        """
        spec = self._spec(name, row, params)
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
        except RedisError as exc:
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
        if isinstance(store, RedisStore) and store.lookup_script is not None:
            head, tail = self._key_parts(spec)
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
            deadline = time.monotonic() + self.lock_timeout
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
                    # The holder outlived the lock's timeout: stop waiting for it.
                    log.warning("LOCK wait timed out %s", full_key)
                    value, computed = self._fetch(entry, full_key, fetch), True
                    self._store(entry, key, full_key, value)
                    return value
                time.sleep(pause)
                pause = min(pause * 1.5, 0.05)
        except RedisError as exc:
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
        from electro_isla.cache.listeners import PENDING
        from electro_isla.extensions import db

        session = db.session()
        tables: set[str] = set(session.info.get(PENDING, ()))
        for obj in (*session.new, *session.dirty, *session.deleted):
            tables.update(t.name for t in sa_inspect(obj).mapper.tables)
        return any(t in entry.tables or t == entry.row_table for t in tables)

    def _fetch(self, entry: CachedName, key: str, fetch: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = json.loads(dumps(fetch()))
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
        return json.loads(dumps(fetch()))

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
        return gen_key.removeprefix(f"{self.prefix}:gen:").split(":", 1)[0]

    def _apply(self, keys: set[str]) -> None:
        if not self.enabled:  # nothing is cached, nothing to invalidate
            return
        if not self._usable():
            self._remember(keys)
            return
        try:
            self.store.bump(sorted(keys))
        except RedisError as exc:
            self._failed("invalidate", ",".join(sorted(keys)), exc)
            self._remember(keys)
            return
        self._applied(keys)

    def _applied(self, keys: Iterable[str]) -> None:
        for key in sorted(keys):
            name = self._name_of(key)
            self._count("invalidations", name)
            signals.cache_invalidate.send(self.app, name=name, key=key)

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
            self.store.bump(sorted(pending))
        except RedisError as exc:
            self._failed("invalidate", "pending", exc)
            return False
        self.breaker.success()
        self.pending.done(pending)
        self._applied(pending)
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
        except RedisError as exc:
            self._failed("ping", "ping", exc)
            return False
        self.breaker.success()
        return self._usable()

    @property
    def pending_invalidations(self) -> int:
        return 0 if self.pending.empty() else len(self.pending)

    def _failed(self, name: str, key: str, exc: Exception) -> None:
        self.breaker.trip()
        self._count("errors", name)
        signals.cache_error.send(self.app, name=name, key=key, error=exc)

    # -- clearing ----------------------------------------------------------------

    @staticmethod
    def _entry_glob(pattern: str) -> str:
        """Glob over value keys `<name>:<row>:…`, e.g. `producto`, `producto:7`, `estadisticas_*`."""
        return pattern if pattern.endswith("*") else f"{pattern}:*"

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
        try:
            deleted = self.store.delete_matching(
                self.backend, self.prefix, self._entry_glob(pattern)
            )
        except RedisError as exc:
            self._failed("clear", pattern, exc)
            raise CacheUnavailable("the cache server is not answering") from exc
        log.info("INVALIDATE %s:v:%s deleted=%d", self.prefix, self._entry_glob(pattern), deleted)
        return deleted

    def clear_all(self) -> int:
        return self.invalidate_pattern("*")

    # -- statistics --------------------------------------------------------------

    def _count(self, stat: str, name: str) -> None:
        with self._stats_lock:
            self._stats_buffer[stat] += 1
            self._stats_buffer[f"{stat}:{name}"] += 1

    def flush_stats(self) -> None:
        """Push this process's counters to the shared store (requests that had any)."""
        if not self._stats_buffer:
            return
        with self._stats_lock:
            counts, self._stats_buffer = self._stats_buffer, Counter()
        if not self.breaker.closed:
            self._restore(counts)
            return
        try:
            self.store.add_stats(counts, f"{time.time():.6f}")
        except RedisError as exc:
            self._restore(counts)
            self._failed("stats", self.store.stats_key if self.store.shared else "stats", exc)

    def _restore(self, counts: Counter[str]) -> None:
        with self._stats_lock:
            self._stats_buffer.update(counts)

    def get_stats(self) -> dict[str, Any]:
        """Totals and per-name counters of every worker sharing the store."""
        self.flush_stats()
        raw: dict[str, int] = {}
        last_updated = None
        if self._usable():
            try:
                raw, last_updated = self.store.read_stats()
            except RedisError as exc:
                self._failed("stats", "stats", exc)
        if not self.breaker.closed:  # figures not yet pushed are still worth showing
            with self._stats_lock:
                for k, n in self._stats_buffer.items():
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
