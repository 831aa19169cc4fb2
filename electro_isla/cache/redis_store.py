"""The store shared by every worker: values, generations, locks and counters in Redis.

Works the same on one server, behind Sentinel and on a Cluster: every
multi-key command stays within one name's hash tag, and what spans names
(bumps, statistics, clearing) goes through pipelines the cluster client splits
per node. With `wait_replicas`, a bump counts only once that many replicas
acknowledged it (WAIT), so a failover cannot silently undo it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

import electro_isla.cache.scripts as scripts
from electro_isla.cache.ahead import identity
from electro_isla.cache.keys import KeySpace, KeySpec
from electro_isla.cache.registry import REGISTRY
from electro_isla.cache.stores import BackendValues, Found, KeyLock, PageFound, page_in_steps
from electro_isla.shared_store import ReplicationLag

# How long a bump's outbox row stays marked as applied. What it guards is a drain
# reading the row between its COMMIT and its delete (milliseconds, longer only when
# a delete fails); a mark that lapsed costs one more bump, never a lost one.
APPLIED_MARK_SECONDS = 60


class RedisStore(BackendValues):
    """See the module docstring; the lookups are the Lua scripts of scripts.py."""

    shared = True

    def __init__(
        self,
        client: Redis | RedisCluster,
        backend: Any,
        keys: KeySpace,
        gen_ttl: int,
        wait: tuple[int, int] = (0, 200),
        cluster: bool = False,
    ) -> None:
        """`wait`: (replicas that must acknowledge a bump, how long to wait for them in ms)."""
        self.client, self.backend, self.keys, self.gen_ttl = client, backend, keys, gen_ttl
        self.cluster = cluster
        self.wait_replicas, self.wait_ms = wait
        self.lookup_script = client.register_script(scripts.LOOKUP)
        self.page_script: Any = client.register_script(scripts.PAGE_LOOKUP)
        # Its digest only (no round trip: a worker may boot while Redis is down).
        self.bump_sha = client.register_script(scripts.BUMP).sha

    # -- values (get/set/get_many/set_many: BackendValues) --------------------------

    def delete_matching(self, glob: str) -> int:
        """SCAN + UNLINK the values matching `glob` (after the prefix); a cluster
        client's SCAN walks every primary, its UNLINK splits keys per slot."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self.keys.scan_glob(glob), count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self.client.unlink(*batch)
                batch = []
        if batch:
            deleted += self.client.unlink(*batch)
        return deleted

    # -- lookups (one round trip each) -------------------------------------------

    def lookup(self, spec: KeySpec) -> Found:
        return self.found(spec, self.lookup_script(*self.lookup_args(spec)))

    def lookup_args(self, spec: KeySpec) -> tuple[list[str], list[Any]]:
        """The LOOKUP script's KEYS and ARGV for `spec`."""
        keys, name = self.keys, spec.entry.name
        return (
            [*spec.gen_keys, keys.stats_key(name)],
            [keys.full(keys.value_head(name)), spec.row_part, spec.params, self.gen_ttl],
        )

    def found(self, spec: KeySpec, reply: list[Any]) -> Found:
        version, raw = reply
        head, tail = self.keys.parts(spec)
        value = None if raw is None else self.backend.serializer.loads(raw)
        return Found(f"{head}{version.decode()}{tail}", value, counted=True)

    def beside(
        self, command: Callable[[Any], Any], specs: list[KeySpec]
    ) -> tuple[Any, dict[tuple[str, str, str], Found]]:
        """`command(client)` and the lookups of `specs` in one round trip (cache/ahead.py).

        Returns the command's reply and what each lookup found. The scripts go by
        EVALSHA (a pipeline given `Script` objects would ask SCRIPT EXISTS first,
        a round trip of its own); a lookup that fails (a restarted server that
        lost the script) is left out, and its read looks it up itself. A Cluster
        splits a pipeline per node, so there the lookups are left to the reads.
        """
        if self.cluster or not specs:
            return command(self.client), {}
        pipe = self.client.pipeline(transaction=False)
        command(pipe)
        for spec in specs:
            keys, args = self.lookup_args(spec)
            pipe.evalsha(self.lookup_script.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        found = {
            identity(spec): self.found(spec, reply)
            for spec, reply in zip(specs, replies[1:], strict=True)
            if not isinstance(reply, Exception)
        }
        return replies[0], found

    def lookup_page(self, name: str, params: str, count: bool, ttl: int) -> PageFound:
        if self.page_script is None:  # tests: the steps the script takes, as separate calls
            return page_in_steps(self, name, params)
        keys = self.keys
        reply = self.page_script(
            [keys.gen_key(name), keys.stats_key(name)],
            [keys.full(keys.value_head(name)), params, self.gen_ttl, "1" if count else "0", ttl],
        )
        found = PageFound(reply[0].decode(), counted=True)
        if len(reply) == 1:
            return found
        found.count = int(reply[1])
        if int(reply[2]) == 1:
            found.joined = (reply[3].decode(), reply[4].decode())
            return found
        loads = self.backend.serializer.loads
        found.ids, found.fragments, found.missing = [], {}, {}
        for i in range(3, len(reply), 3):
            row = int(reply[i])
            found.ids.append(row)
            if reply[i + 2]:
                found.fragments[row] = loads(reply[i + 2])
            else:
                found.missing[row] = reply[i + 1].decode()
        return found

    # -- generations, locks ----------------------------------------------------------

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

    def bump(self, keys: Iterable[str], marks: Mapping[str, list[str]] | None = None) -> list[str]:
        """Move each generation of `keys` once, in one pipeline; the keys that moved.

        A key given the `marks` of its outbox rows (outbox.Effect.mark) moves only
        if one of them was never applied (scripts.BUMP sets each): the writer's
        apply and a drain racing it move it once. A missing counter is seeded from
        the clock first: INCR alone would restart it at 1, a number whose old
        values may still be stored. Too few replicas acknowledging raises
        ReplicationLag naming the keys that moved.
        """
        marks = marks or {}
        calls = [[k, *(self.keys.applied_key(k, m) for m in marks.get(k, ()))] for k in keys]
        args = (time.time_ns(), self.gen_ttl, APPLIED_MARK_SECONDS)

        def fill(todo: list[list[str]]) -> Callable[[Any], None]:
            def queue(pipe: Any) -> None:
                for call in todo:
                    pipe.evalsha(self.bump_sha, len(call), *call, *args)

            return queue

        replies, acked = self.pipelined(fill(calls), raise_on_error=False)
        lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:  # a restarted server (or a new node) forgot the script: load it, run those
            self.client.script_load(scripts.BUMP)
            retried, acked_again = self.pipelined(fill([calls[i] for i in lost]), False)
            for i, reply in zip(lost, retried, strict=True):
                replies[i] = reply
            if acked is not None and acked_again is not None:
                acked = min(acked, acked_again)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        moved = [call[0] for call, done in zip(calls, replies, strict=True) if int(done)]
        self.acknowledged(acked, "bump", moved)
        return moved

    def write(self, fill: Callable[[Any], None], what: str = "write") -> list[Any]:
        """Run the commands `fill` queues in one pipeline, acknowledged by `wait_replicas`."""
        replies, acked = self.pipelined(fill)
        self.acknowledged(acked, what)
        return replies

    def pipelined(
        self, fill: Callable[[Any], None], raise_on_error: bool = True
    ) -> tuple[list[Any], int | None]:
        """`fill`'s commands in one pipeline, then WAIT on the same connection (it covers
        exactly them): their replies (an error in its place when not `raise_on_error`)
        and how many replicas acknowledged them (None: no replica is asked for)."""
        pipe = self.client.pipeline(transaction=False)
        fill(pipe)
        if not self.wait_replicas:
            return pipe.execute(raise_on_error=raise_on_error), None
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_ms)
        replies = pipe.execute(raise_on_error=raise_on_error)
        if isinstance(replies[-1], Exception):
            raise replies[-1]
        return replies[:-1], int(replies[-1])

    def acknowledged(self, acked: int | None, what: str, done: list[str] | None = None) -> None:
        """Raise ReplicationLag (carrying `done`) when fewer replicas than asked acknowledged."""
        if acked is not None and acked < self.wait_replicas:
            raise ReplicationLag(
                f"{what} acknowledged by {acked} of {self.wait_replicas} replica(s) "
                f"within {self.wait_ms} ms",
                done=done or [],
            )

    def lock(self, key: str, timeout: float) -> KeyLock:
        return self.client.lock(key, timeout=timeout, thread_local=False)

    def ping(self) -> None:
        self.client.ping()

    # -- counters --------------------------------------------------------------------

    def add_stats(self, counts: Counter[str], when: str) -> None:
        """Per-name counts into the name's hash (the slot its lookups count in), the rest apart."""
        pipe = self.client.pipeline(transaction=False)
        touched = set()
        for field_name, n in counts.items():
            stat, _, name = field_name.partition(":")
            if not name:
                continue  # totals are the sums of the per-name fields
            if name in REGISTRY:
                key = self.keys.stats_key(name)
                pipe.hincrby(key, stat, n)
            else:  # e.g. errors:ping, errors:invalidate
                key = self.keys.stats_key()
                pipe.hincrby(key, field_name, n)
            touched.add(key)
        for key in touched:
            pipe.hset(key, "last_updated", when)
        pipe.execute()

    def read_stats(self) -> tuple[dict[str, int], str | None]:
        names = list(REGISTRY)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.stats_key())
        for name in names:
            pipe.hgetall(self.keys.stats_key(name))
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
