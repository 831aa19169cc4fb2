"""How many clients may be held: per process (LIVE_MAX_WAITERS) and streams per usuario.

A held request or a stream occupies one of the worker's threads for as long as
it lasts; gunicorn.conf.py gives each worker LIVE_MAX_WAITERS threads on top of
the ones ordinary requests use, and `Slots` makes sure live clients never take
more, so ordinary requests always find a thread.

Streams per usuario are counted across every process and host in Redis: a sorted
set per usuario whose members are the open streams, each with a lease renewed on
every heartbeat, so a stream whose worker died (kill -9) stops counting when its
lease runs out. While Redis cannot answer, each process counts its own. If Redis
loses the set (restarted empty, flushed), each open stream puts its lease back at
its next heartbeat; streams opened while Redis was down keep counting in their own
process only, until they end.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
import uuid
from collections import Counter

from flask import Flask, g

from electro_isla.cache import REDIS_ERRORS, redis_health

# KEYS[1]: ZSET of the usuario's counted streams, lease id -> lease end (ms);
# KEYS[2]: ZSET of the replaced ones still running (a reloaded page's old stream, until
# its next renewal ends it). Drop the expired; refuse beyond the limit (the replaced
# lease, ARGV[6], not counted); move the replaced lease from the first set to the
# second, only if it was counted (a made-up id leaves nothing behind) and fewer than
# the limit are replaced and running: so a chain of replacements holds at most twice
# the limit open (a security probe held 49 streams of one usuario with a chain); add.
TAKE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local limit = tonumber(ARGV[3])
local replaced = ARGV[6] ~= '' and redis.call('ZSCORE', KEYS[1], ARGV[6])
  and redis.call('ZCARD', KEYS[2]) < limit
local counted = redis.call('ZCARD', KEYS[1])
if replaced then
  counted = counted - 1
end
if counted >= limit then
  return 0
end
if replaced then
  redis.call('ZREM', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
# A renewal puts the lease back even if Redis lost it (a restart, a FLUSHDB), unless
# a newer stream of the same client replaced it: 0 then, and the stream ends.
RENEW_SCRIPT = """
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# What a client may name as the stream it replaces: a lease id this class handed out.
LEASE = re.compile(r"[0-9a-f]{32}")


class Slots:
    """Held requests and streams of this process, at most `limit` together."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.held = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.held >= self.limit:
                return False
            self.held += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.held = max(0, self.held - 1)


class Ordinary:
    """At most `limit` ordinary requests at once per process (gunicorn's GUNICORN_THREADS).

    The worker has LIVE_MAX_WAITERS more threads for live clients; without this
    bound a burst of ordinary requests would use them all and contend for the
    database pool (5 + 5) instead of queueing as they did with 4 threads. A live
    request leaves its place as soon as it starts holding (`leave`).
    """

    def __init__(self, limit: int) -> None:
        self._places = threading.BoundedSemaphore(limit)

    def enter(self) -> None:
        self._places.acquire()
        g.ordinary_place = True

    def leave(self) -> None:
        if g.pop("ordinary_place", False):
            self._places.release()


class StreamQuota:
    """At most `limit` open streams per usuario, across every worker of every host."""

    def __init__(self, app: Flask, limit: int, lease_seconds: float) -> None:
        self.app = app
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)
        self.key_prefix = f"{app.config['CACHE_KEY_PREFIX']}:live:streams:"
        self._local: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._script = None
        self._renew = None

    def _client(self):  # noqa: ANN202
        return redis_health(self.app).client()

    @property
    def retry_after(self) -> int:
        """Seconds by which a stream that has ended has given its place back: a closed
        one when its worker's heartbeat write fails (up to two heartbeats), a dead
        worker's when its lease runs out (the longer of the two)."""
        return math.ceil(self.lease_ms / 1000)

    def _key(self, usuario_id: int) -> str:
        return f"{self.key_prefix}{{{usuario_id}}}"

    def _replaced(self, usuario_id: int) -> str:
        """Same hash tag as the usuario's set: one Cluster slot for both."""
        return f"{self._key(usuario_id)}:replaced"

    def take(self, usuario_id: int, replaces: str | None = None) -> str | None:
        """A lease id for one more stream of `usuario_id`, or None when at the limit.

        `replaces`: the lease of this client's previous stream (X-Stream-Replaces), which
        stops counting now: a reloaded console's closed stream held its place until its
        worker's next heartbeat write failed (a probe: four reloads, and the page was
        refused its stream for ~30 s). Only this usuario's own leases can be named."""
        lease = uuid.uuid4().hex
        replaced = replaces if replaces and LEASE.fullmatch(replaces) else ""
        client = self._client()
        if client is not None:
            now = int(time.time() * 1000)
            try:
                if self._script is None:
                    self._script = client.register_script(TAKE_SCRIPT)
                granted = self._script(
                    keys=[self._key(usuario_id), self._replaced(usuario_id)],
                    args=[now, now + self.lease_ms, self.limit, lease, self.lease_ms, replaced],
                )
            except REDIS_ERRORS:
                pass  # count here instead
            else:
                return lease if int(granted) else None
        with self._lock:
            if self._local[usuario_id] >= self.limit:
                return None
            self._local[usuario_id] += 1
        return f"local:{lease}"

    def renew(self, usuario_id: int, lease: str) -> bool:
        """Extend the lease; False when a newer stream of its client replaced it."""
        if lease.startswith("local:"):
            return True
        client = self._client()
        if client is None:
            return True
        try:
            if self._renew is None:
                self._renew = client.register_script(RENEW_SCRIPT)
            # Not only an existing member: a lease Redis lost (a restart, a FLUSHDB) is
            # counted again at the next keepalive, so the limit holds again within a
            # heartbeat. (A renewal that a stalled Redis runs after this stream's ZREM,
            # from another connection, would count a closed stream until its lease
            # ends: a 429 too many at worst, never one too few.)
            kept = self._renew(
                keys=[self._key(usuario_id), self._replaced(usuario_id)],
                args=[int(time.time() * 1000) + self.lease_ms, lease, self.lease_ms],
            )
        except REDIS_ERRORS:
            return True  # the lease runs out; the stream goes on
        return bool(int(kept))

    def give(self, usuario_id: int, lease: str) -> None:
        if lease.startswith("local:"):
            with self._lock:
                self._local[usuario_id] -= 1
                if self._local[usuario_id] <= 0:
                    del self._local[usuario_id]
            return
        client = self._client()
        if client is None:
            return
        with contextlib.suppress(*REDIS_ERRORS):  # else its lease runs out
            pipe = client.pipeline(transaction=False)
            pipe.zrem(self._key(usuario_id), lease)
            pipe.zrem(self._replaced(usuario_id), lease)
            pipe.execute()
