"""Where generations, locks and counters live: in-process, or in Redis for every worker."""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import NoScriptError

GLOB_CHARS = re.compile(r"([*?\[\]\\])")

# KEYS: the name's generation counter `<prefix>:gen:<name>` and, for a row family,
# the row's `<prefix>:gen:<name>:<row>`. ARGV[1]: the params part of the key;
# ARGV[2]: how long a seeded counter lives (the longest TTL). The value key and the
# stats hash are derived here, so the client packs few arguments. Returns
# {generations joined by ".", raw value or nil}. A missing counter is seeded from the
# server clock in nanoseconds, never from a number an evicted or expired one may have
# used, and expires: a lookup of any id (anonymous clients choose them) leaves no
# key that outlives the longest TTL.
LOOKUP_SCRIPT = """
local prefix, name = string.match(KEYS[1], '^(.*):gen:([^:]+)$')
local row = '-'
if KEYS[2] then row = string.sub(KEYS[2], #KEYS[1] + 2) end
local gens = redis.call('MGET', unpack(KEYS))
local now = redis.call('TIME')
for i = 1, #KEYS do
  if not gens[i] then
    redis.call('SET', KEYS[i], now[1] .. string.format('%06d', now[2]) .. '000', 'NX', 'EX', ARGV[2])
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


class KeyLock(Protocol):
    def acquire(self, blocking: bool = ...) -> bool: ...  # pragma: no cover

    def release(self) -> None: ...  # pragma: no cover


class LocalStore:
    """Generations, locks and counters for the in-process cache (one process only).

    Like Redis' counters, a generation expires `gen_ttl` seconds after it was last
    used and is re-seeded from the clock; idle locks are dropped. A sweep every
    `gen_ttl` keeps both bounded by what was used within the longest TTL.
    """

    shared = False

    def __init__(self, gen_ttl: int) -> None:
        self.gen_ttl = gen_ttl
        self._guard = threading.Lock()
        self._gens: dict[str, tuple[int, float]] = {}  # key -> (generation, expires at)
        self._locks: dict[str, threading.Lock] = {}
        self._stats: Counter[str] = Counter()
        self._last_updated: str | None = None
        self._next_sweep = time.monotonic() + gen_ttl

    def _generation(self, key: str, now: float) -> int:
        current = self._gens.get(key)
        gen = current[0] if current is not None and current[1] > now else time.time_ns()
        self._gens[key] = (gen, now + self.gen_ttl)
        return gen

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.gen_ttl
        self._gens = {k: v for k, v in self._gens.items() if v[1] > now}
        self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}

    def __len__(self) -> int:
        """Generations and locks held (what a flood of distinct keys could grow)."""
        with self._guard:
            return len(self._gens) + len(self._locks)

    def generations(self, keys: list[str]) -> list[int]:
        now = time.monotonic()
        with self._guard:
            self._sweep(now)
            return [self._generation(k, now) for k in keys]

    def bump(self, keys: Iterable[str]) -> None:
        now = time.monotonic()
        with self._guard:
            for k in keys:
                self._gens[k] = (self._generation(k, now) + 1, now + self.gen_ttl)

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

    def __init__(self, client: Redis, prefix: str, atomic: bool, gen_ttl: int) -> None:
        self.client = client
        self.gen_ttl = gen_ttl
        self.stats_key = f"{prefix}:stats"
        # Cluster mode cannot run a script over keys of several slots.
        self.lookup_script = client.register_script(LOOKUP_SCRIPT) if atomic else None

    def lookup(self, keys: list[str], params: str) -> tuple[bytes, bytes | None]:
        """Run the lookup script: EVALSHA straight away (fewest arguments to pack)."""
        script = self.lookup_script
        assert script is not None
        try:
            return self.client.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, params, self.gen_ttl
            )
        except NoScriptError:  # the server restarted or was flushed since
            script.sha = self.client.script_load(script.script)
            return self.client.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, params, self.gen_ttl
            )

    def generations(self, keys: list[str]) -> list[int]:
        values = self.client.mget(keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        if missing:
            # A fresh counter starts at a clock value, never at a number an
            # evicted counter may have used before.
            pipe = self.client.pipeline(transaction=False)
            for k in missing:
                pipe.set(k, time.time_ns(), nx=True, ex=self.gen_ttl)
            pipe.execute()
            values = self.client.mget(keys)
        return [int(v) for v in values]

    def bump(self, keys: Iterable[str]) -> None:
        # A missing counter is seeded from the clock first: INCR alone would restart
        # it at 1, a number whose old values may still be stored.
        seed = time.time_ns()
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, seed, nx=True, ex=self.gen_ttl)
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
