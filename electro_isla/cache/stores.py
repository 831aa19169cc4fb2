"""Where generations, locks and counters live: in-process, or in Redis for every worker."""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from electro_isla.cache.registry import REGISTRY
from electro_isla.shared_store import ReplicationLag

GLOB_CHARS = re.compile(r"([*?\[\]\\])")
# The in-process store keeps at most this many generations (and as many locks):
# product ids and searches are the client's choice, so time alone is no bound.
LOCAL_MAX_KEYS = 2048

# KEYS: the name's generation counter `<prefix>:gen:{<name>}` and, for a row family,
# the row's `<prefix>:gen:{<name>}:<row>`. ARGV[1]: the params part of the key;
# ARGV[2]: how long a seeded counter lives (the longest TTL). The value key and the
# name's stats hash are derived here (same hash tag, same cluster slot), so the client
# packs few arguments. Returns {generations joined by ".", raw value or nil}. A missing
# counter is seeded from the server clock in nanoseconds, never from a number an
# evicted or expired one may have used, and expires: a lookup of any id (anonymous
# clients choose them) leaves no key that outlives the longest TTL.
LOOKUP_SCRIPT = """
local prefix, name = string.match(KEYS[1], '^(.*):gen:{([^}]*)}$')
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
local value = redis.call('GET', prefix .. ':v:{' .. name .. '}:' .. row .. ':' .. version .. ':' .. ARGV[1])
local field = 'misses'
if value then field = 'hits' end
local stats = prefix .. ':stats:{' .. name .. '}'
redis.call('HINCRBY', stats, field, 1)
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
    `gen_ttl` keeps both bounded by what was used within the longest TTL, and
    `max_keys` by count: past it the least recently used generation goes (like
    Redis' eviction: a counter re-seeded from the clock is above every number it
    held, so no stored value is reachable again) and idle locks are dropped.
    """

    shared = False

    def __init__(self, gen_ttl: int, max_keys: int = LOCAL_MAX_KEYS) -> None:
        self.gen_ttl = gen_ttl
        self.max_keys = max_keys
        self._guard = threading.Lock()
        # key -> (generation, expires at), least recently used first
        self._gens: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
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

    def delete_matching(self, backend: Any, prefix: str, glob: str) -> int:
        # SimpleCache keeps keys without the prefix; one process, one app.
        keys = [k for k in list(backend._cache) if fnmatch.fnmatchcase(k, glob)]
        for k in keys:
            backend._cache.pop(k, None)
        return len(keys)


class RedisStore:
    """Generations, locks and counters in Redis, shared by every worker process.

    Works the same on one server, behind Sentinel and on a Cluster: every
    multi-key command stays within one name's hash tag, and what spans names
    (bumps, statistics, clearing) goes through pipelines the cluster client
    splits per node. With `wait_replicas`, a bump counts only once that many
    replicas acknowledged it (WAIT), so a failover cannot silently undo it.
    """

    shared = True

    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: str,
        gen_ttl: int,
        wait_replicas: int = 0,
        wait_ms: int = 200,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.gen_ttl = gen_ttl
        self.stats_key = f"{prefix}:stats"
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        self.lookup_script = client.register_script(LOOKUP_SCRIPT)

    def lookup(self, keys: list[str], params: str) -> tuple[bytes, bytes | None]:
        """Run the lookup script: EVALSHA straight away (fewest arguments to pack)."""
        script = self.lookup_script
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

        def fill(pipe: Any) -> None:
            for k in keys:
                pipe.set(k, seed, nx=True, ex=self.gen_ttl)
                pipe.incr(k)

        self.write(fill, "bump")

    def write(self, fill: Callable[[Any], None], what: str = "write") -> list[Any]:
        """Run the commands `fill` queues in one pipeline, acknowledged by `wait_replicas`."""
        pipe = self.client.pipeline(transaction=False)
        fill(pipe)
        if self.wait_replicas:
            # Same connection as the writes: WAIT covers exactly them.
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_ms)
        replies = pipe.execute()
        if self.wait_replicas and int(replies[-1]) < self.wait_replicas:
            raise ReplicationLag(
                f"{what} acknowledged by {replies[-1]} of {self.wait_replicas} replica(s) "
                f"within {self.wait_ms} ms"
            )
        return replies

    def lock(self, key: str, timeout: float) -> KeyLock:
        return self.client.lock(key, timeout=timeout, thread_local=False)

    def _name_stats_key(self, name: str) -> str:
        return f"{self.prefix}:stats:{{{name}}}"

    def add_stats(self, counts: Counter[str], when: str) -> None:
        """Per-name counts into the name's hash (the slot its lookups count in), the rest apart."""
        pipe = self.client.pipeline(transaction=False)
        touched = set()
        for field_name, n in counts.items():
            stat, _, name = field_name.partition(":")
            if not name:
                continue  # totals are the sums of the per-name fields
            if name in REGISTRY:
                key = self._name_stats_key(name)
                pipe.hincrby(key, stat, n)
                touched.add(key)
            else:  # e.g. errors:ping, errors:invalidate
                pipe.hincrby(self.stats_key, field_name, n)
                touched.add(self.stats_key)
        for key in touched:
            pipe.hset(key, "last_updated", when)
        pipe.execute()

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        names = list(REGISTRY)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.stats_key)
        for name in names:
            pipe.hgetall(self._name_stats_key(name))
        replies = pipe.execute()
        raw: Counter[str] = Counter()
        stamps = []
        hashes = [(None, replies[0])] + list(zip(names, replies[1:], strict=True))
        for name, fields in hashes:
            for k, v in fields.items():
                key, value = k.decode(), v.decode()
                if key == "last_updated":
                    stamps.append(float(value))
                    continue
                if name is None and ":" not in key:
                    continue  # a total written by an older version: recomputed here
                full = key if name is None else f"{key}:{name}"
                raw[full] += int(value)
                raw[full.partition(":")[0]] += int(value)
        return dict(raw), None if not stamps else f"{max(stamps):.6f}"

    def delete_matching(self, backend: Any, prefix: str, glob: str) -> int:
        # The prefix is literal even if it holds glob characters. A cluster
        # client's SCAN walks every primary; its UNLINK splits keys per slot.
        glob = GLOB_CHARS.sub(r"\\\1", prefix) + f":{glob}"
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
