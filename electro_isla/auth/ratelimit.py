"""Login throttling: 5 failed attempts within 60 s per account or per IP -> 429.

Built on the `limits` library's moving window (no hand-written counters). With
`REDIS_URL` the windows live in Redis under `<prefix>:ratelimit:`, shared by
every worker process, on the same connection pool and short timeouts as the
cache; without Redis, or while Redis is unreachable, each process keeps its
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
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from electro_isla.cache import RedisHealth, redis_health, shared_redis

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
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            storage = RedisStorage(
                "redis://",
                connection_pool=pool,
                key_prefix=f"{app.config['CACHE_KEY_PREFIX']}:ratelimit",
                retry=Retry(NoBackoff(), 0),
            )
            self.shared = MovingWindowRateLimiter(storage)
        elif client is not None:
            # Redis Cluster has no single connection pool to share.
            log.warning("RATELIMIT login windows are per process with REDIS_MODE=cluster")

    @cached_property
    def health(self) -> RedisHealth:
        return redis_health(self.app)

    def _run(self, action: Callable[..., T], *args: str) -> T:
        """Run `action` on the shared windows, or on this process's when Redis is out."""
        if self.shared is None or self.health.client() is None:
            return action(self.local, *args)
        try:
            result = action(self.shared, *args)
        except RedisError as exc:
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
