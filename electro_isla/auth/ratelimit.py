"""Login throttling: 5 failed attempts within 60 s per account or per IP -> 429.

Built on the `limits` library's moving window (no hand-written counters). With
a shared Redis (any REDIS_MODE) the windows live in Redis under
`<prefix>:ratelimit:`, shared by every worker process and host, with the same
short timeouts as the cache (the cache's pool; on Cluster, limits' own cluster
client over the same nodes); without Redis, or while Redis is unreachable, each process keeps its
own windows (degraded, but login keeps working and stays throttled).

Only failures are counted. A success clears the account's window but not the
IP's, so an attacker cannot reset an IP's count by logging into their own
account between guesses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from flask import Flask, current_app
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from electro_isla.cache import REDIS_ERRORS, RedisHealth, redis_health, shared_redis
from electro_isla.cache.clients import cluster_auth, timeouts

log = logging.getLogger("electro_isla.auth")

EXTENSION_KEY = "electro_isla.auth.limiter"
T = TypeVar("T")


@dataclass(frozen=True)
class Block:
    """A refused attempt: how long until the oldest counted failure leaves the window."""

    seconds: int


def account_key(identifier: str, usuario_id: int | None) -> str:
    """One window per account, whichever of username or email was typed.

    Unknown identifiers are hashed: they are user input and may contain the
    `/` that `limits` uses as a key separator.
    """
    if usuario_id is not None:
        return f"user:{usuario_id}"
    digest = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
    return f"name:{digest}"


class LoginLimiter:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.item = RateLimitItemPerSecond(
            int(app.config["LOGIN_MAX_FAILURES"]),
            int(app.config["LOGIN_WINDOW_SECONDS"]),
            namespace="login",
        )
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.shared: MovingWindowRateLimiter | None = None
        client = shared_redis(app)
        key_prefix = f"{app.config['CACHE_KEY_PREFIX']}:ratelimit"
        if isinstance(client, RedisCluster):
            # A cluster client has no single pool to share: limits builds its own.
            nodes = ",".join(f"{n.host}:{n.port}" for n in client.get_nodes())
            storage: RedisStorage = RedisClusterStorage(
                f"redis+cluster://{nodes}",
                key_prefix=key_prefix,
                retry=Retry(NoBackoff(), 0),
                reinitialize_steps=1,
                **timeouts(app.config),
                **cluster_auth(client),
            )
            self.shared = MovingWindowRateLimiter(storage)
        elif client is not None:
            storage = RedisStorage(
                "redis://",
                connection_pool=client.connection_pool,
                key_prefix=key_prefix,
                retry=Retry(NoBackoff(), 0),
            )
            self.shared = MovingWindowRateLimiter(storage)

    @cached_property
    def health(self) -> RedisHealth:
        return redis_health(self.app)

    def _run(self, action: Callable[..., T], *args: str) -> T:
        """Run `action` on the shared windows, or on this process's when Redis is out."""
        if self.shared is None or self.health.client() is None:
            return action(self.local, *args)
        try:
            result = action(self.shared, *args)
        except REDIS_ERRORS as exc:
            self.health.failed("ratelimit", f"{self.app.config['CACHE_KEY_PREFIX']}:ratelimit", exc)
            log.warning("RATELIMIT falling back to this process, Redis unavailable: %s", exc)
            return action(self.local, *args)
        self.health.worked()
        return result

    def blocked(self, account: str, ip: str) -> Block | None:
        """A Block when either window already holds the maximum of failures."""
        return self._run(self._blocked, account, ip)

    def _blocked(self, limiter: MovingWindowRateLimiter, account: str, ip: str) -> Block | None:
        waits = []
        for scope, value in (("account", account), ("ip", ip)):
            stats = limiter.get_window_stats(self.item, scope, value)
            if stats.remaining <= 0:
                waits.append(stats.reset_time - time.time())
        if not waits:
            return None
        # Redis hands timestamps back with 14 significant digits: round off that noise.
        return Block(seconds=max(1, math.ceil(round(max(waits), 3))))

    def failed(self, account: str, ip: str) -> None:
        self._run(self._hit, account, ip)

    def _hit(self, limiter: MovingWindowRateLimiter, account: str, ip: str) -> None:
        limiter.hit(self.item, "account", account)
        limiter.hit(self.item, "ip", ip)

    def succeeded(self, account: str) -> None:
        self._run(lambda limiter: limiter.clear(self.item, "account", account))


def login_limiter(app: Flask | None = None) -> LoginLimiter:
    """This app's login limiter, created on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    limiter = app.extensions.get(EXTENSION_KEY)
    if limiter is None:
        limiter = app.extensions.setdefault(EXTENSION_KEY, LoginLimiter(app))
    return limiter
