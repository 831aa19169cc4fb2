"""Where values, generations, locks and counters live: the one storage abstraction.

Two stores answer the same calls: `LocalStore` (in-process, one worker) and
`RedisStore` (redis_store.py, shared by every worker). Values go through the
app's Flask-Caching backend (JSON, never pickle), which only the store holds;
the rest (generations, locks, counters, clearing) is the store's own. A lookup
returns what it found and whether it already counted itself (the Redis scripts
count in the same round trip; in-process the counting sink does it).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from electro_isla.cache.keys import KeySpace, KeySpec
from electro_isla.cache.stats import Counting
from electro_isla.shared_store import CircuitBreaker

# The in-process store keeps at most this many generations (and as many locks
# and value keys): product ids and searches are the client's choice, so time
# alone is no bound.
LOCAL_MAX_KEYS = 2048

Fragment = dict[str, str]  # {"b": compact item JSON, "t": sorted-key item JSON}


@dataclass
class Found:
    """What a plain lookup found: its value key and the value (None: a miss)."""

    key: str
    value: Any
    counted: bool


@dataclass
class PageFound:
    """What a page lookup found: the id list (or None) and each row's fragment (or its version)."""

    gen: str
    counted: bool
    count: int | None = None
    ids: list[int] | None = None
    fragments: dict[int, Fragment] | None = None
    missing: dict[int, str] | None = None  # row id -> version its fragment belongs under
    joined: tuple[str, str] | None = None  # every fragment found, already joined


@dataclass(frozen=True)
class Parts:
    """What every step of one app's cache shares."""

    app: Any
    store: Any  # LocalStore or RedisStore
    keys: KeySpace
    counting: Counting
    breaker: CircuitBreaker
    ttls: dict[str, int]


class KeyLock(Protocol):
    def acquire(self, blocking: bool = ...) -> bool: ...  # pragma: no cover

    def release(self) -> None: ...  # pragma: no cover


def join_fragments(ordered: Sequence[Fragment]) -> tuple[str, str]:
    """(body items, tagged items) joined as the JSON lists they form."""
    return ",".join(f["b"] for f in ordered), ", ".join(f["t"] for f in ordered)


class BackendValues:
    """Values through the app's Flask-Caching backend (keys relative to its prefix)."""

    backend: Any

    def get(self, key: str) -> Any:
        return self.backend.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return list(self.backend.get_many(*keys)) if keys else []

    def set(self, key: str, value: Any, ttl: int) -> None:
        self.backend.set(key, value, timeout=ttl)

    def set_many(self, values: Mapping[str, Any], ttl: int) -> None:
        self.backend.set_many(dict(values), timeout=ttl)


def page_in_steps(store: Any, name: str, params: str) -> PageFound:
    """The page script's steps as separate calls (see scripts.PAGE_LOOKUP); not counted."""
    keys = store.keys
    gen = str(store.generations([keys.gen_key(name)])[0])
    found = PageFound(gen, counted=False)
    listed = store.get(keys.list_key(name, gen, params))
    if listed is None:
        return found
    found.count, found.ids = int(listed["count"]), [int(i) for i in listed["ids"]]
    gens = store.generations([keys.gen_key(name, row) for row in found.ids])
    versions = {row: f"{gen}.{g}" for row, g in zip(found.ids, gens, strict=True)}
    values = store.get_many([keys.row_key(name, row, versions[row]) for row in found.ids])
    found.fragments, found.missing = {}, {}
    for row, value in zip(found.ids, values, strict=True):
        if value is None:
            found.missing[row] = versions[row]
        else:
            found.fragments[row] = value
    if not found.missing:
        found.joined = join_fragments([found.fragments[row] for row in found.ids])
    return found


class LocalStore(BackendValues):
    """Values, generations, locks and counters for the in-process cache (one process only).

    A generation expires `gen_ttl` seconds after it was last read or bumped and is
    re-seeded from the clock; idle locks are dropped. (Redis' counters expire
    `gen_ttl` after they were seeded, whatever used them since: a name read all
    day is read cold once per `gen_ttl`. Never stale either way.) A sweep every
    `gen_ttl` keeps both bounded by what was used within the longest TTL, and
    `max_keys` by count: past it the least recently used generation goes (like
    Redis' eviction: a counter re-seeded from the clock is above every number it
    held, so no stored value is reachable again) and idle locks are dropped.
    The value keys set are remembered (as boundedly) so that clearing can name them.
    """

    shared = False

    def __init__(
        self, backend: Any, keys: KeySpace, gen_ttl: int, max_keys: int = LOCAL_MAX_KEYS
    ) -> None:
        self.backend = backend
        self.keys = keys
        self.gen_ttl = gen_ttl
        self.max_keys = max_keys
        self._guard = threading.Lock()
        # key -> (generation, expires at), least recently used first
        self._gens: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._values: OrderedDict[str, float] = OrderedDict()  # value key -> expires at
        self._stats: Counter[str] = Counter()
        self._last_updated: str | None = None
        self._next_sweep = time.monotonic() + gen_ttl

    def _generation(self, key: str, now: float) -> int:
        current = self._gens.get(key)
        gen = current[0] if current is not None and current[1] > now else time.time_ns()
        self._gens[key] = (gen, now + self.gen_ttl)
        self._gens.move_to_end(key)
        while len(self._gens) > self.max_keys:
            self._gens.popitem(last=False)
        return gen

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.gen_ttl
        self._gens = OrderedDict((k, v) for k, v in self._gens.items() if v[1] > now)
        self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}
        self._values = OrderedDict((k, t) for k, t in self._values.items() if t > now)

    def __len__(self) -> int:
        """Generations and locks held (what a flood of distinct keys could grow)."""
        with self._guard:
            return len(self._gens) + len(self._locks)

    # -- values ------------------------------------------------------------------

    def _remember(self, keys: Iterable[str], ttl: int) -> None:
        expires = time.monotonic() + ttl
        with self._guard:
            for key in keys:
                self._values[key] = expires
                self._values.move_to_end(key)
            while len(self._values) > self.max_keys:
                self._values.popitem(last=False)

    def set(self, key: str, value: Any, ttl: int) -> None:
        super().set(key, value, ttl)
        self._remember([key], ttl)

    def set_many(self, values: Mapping[str, Any], ttl: int) -> None:
        super().set_many(values, ttl)
        self._remember(values, ttl)

    def delete_matching(self, glob: str) -> int:
        """Delete the values whose keys (after the prefix) match `glob`; how many were there."""
        with self._guard:
            keys = [k for k in self._values if fnmatch.fnmatchcase(k, glob)]
            for key in keys:
                del self._values[key]
        return sum(1 for key in keys if self.backend.delete(key))

    # -- lookups -------------------------------------------------------------------

    def lookup(self, spec: KeySpec) -> Found:
        key = self.keys.value_key(spec, self.generations(spec.gen_keys))
        return Found(key, self.backend.get(key), counted=False)

    def lookup_page(self, name: str, params: str, count: bool, ttl: int) -> PageFound:
        return page_in_steps(self, name, params)

    # -- generations, locks, counters ------------------------------------------------

    def generations(self, keys: list[str]) -> list[int]:
        now = time.monotonic()
        with self._guard:
            self._sweep(now)
            return [self._generation(k, now) for k in keys]

    def bump(self, keys: Iterable[str], marks: Mapping[str, list[str]] | None = None) -> list[str]:
        """Move every generation of `keys` (no outbox here: `marks` is always empty)."""
        now = time.monotonic()
        keys = list(keys)
        with self._guard:
            for k in keys:
                self._gens[k] = (self._generation(k, now) + 1, now + self.gen_ttl)
        return keys

    def lock(self, key: str, timeout: float) -> KeyLock:
        with self._guard:
            if key not in self._locks and len(self._locks) >= self.max_keys:
                # A dropped idle lock costs at most one duplicate fetch.
                self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}
            return self._locks.setdefault(key, threading.Lock())

    def add_stats(self, counts: Counter[str], when: str) -> None:
        with self._guard:
            self._stats.update(counts)
            self._last_updated = when

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        with self._guard:
            return dict(self._stats), self._last_updated

    def ping(self) -> None:
        """Nothing to reach: the store is this process."""
