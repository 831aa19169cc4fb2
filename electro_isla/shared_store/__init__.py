"""The one shared Redis of a process: its client, its circuit breaker, its health.

Cache, token revocations and login limits all reach Redis through here, so one
outage is met, logged and waited out once, and `/readyz` can say truthfully
whether this process uses the configured store. The client is built lazily in
every mode (standalone, Sentinel, Cluster): a worker that boots while Redis is
down serves from the database and starts using Redis when it answers again,
within one breaker interval (CACHE_CIRCUIT_RESET_SECONDS).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from electro_isla.shared_store.breaker import (
    REDIS_ERRORS,
    CircuitBreaker,
    RedisHealth,
    ReplicationLag,
    is_outage,
)
from electro_isla.shared_store.clients import lazy_client
from electro_isla.shared_store.lazy import LazyClient

__all__ = [
    "REDIS_ERRORS",
    "CircuitBreaker",
    "LazyClient",
    "RedisHealth",
    "ReplicationLag",
    "SharedStore",
    "is_outage",
    "redis_health",
    "register_shared_store",
    "shared_redis",
    "shared_store",
]

EXTENSION_KEY = "electro_isla.shared_store"


class SharedStore:
    """The configured shared Redis (or none) as this process sees it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.client: LazyClient | None = lazy_client(config)
        self.breaker = CircuitBreaker(float(config["CACHE_CIRCUIT_RESET_SECONDS"]))
        self.health = RedisHealth(self.client, self.breaker)

    @property
    def connected(self) -> bool:
        """True while this process uses the configured Redis: built and circuit closed."""
        return self.client is not None and self.client.built and self.breaker.closed

    def master_switches(self) -> int:
        """Sentinel master changes this process followed (0 in other modes, or not built)."""
        if self.client is None or not self.client.built:
            return 0
        pool = getattr(self.client.resolve(), "connection_pool", None)
        return int(getattr(pool, "switches", 0))


def register_shared_store(app: Flask) -> SharedStore:
    """Create this app's shared store (nothing connects yet)."""
    store = SharedStore(app.config)
    app.extensions[EXTENSION_KEY] = store
    return store


def shared_store(app: Flask) -> SharedStore:
    return app.extensions[EXTENSION_KEY]


def shared_redis(app: Flask) -> LazyClient | None:
    """The client every shared store uses (cache, revocations, limits), or None."""
    return shared_store(app).client


def redis_health(app: Flask) -> RedisHealth:
    """The shared client behind the one breaker, for the stores beside the cache."""
    return shared_store(app).health
