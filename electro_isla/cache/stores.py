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


class KeyLock(Protocol):
    def acquire(self, blocking: bool = ...) -> bool: ...  # pragma: no cover

    def release(self) -> None: ...  # pragma: no cover


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
