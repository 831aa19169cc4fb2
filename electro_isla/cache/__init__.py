"""The cache layer: Flask-Caching backends, the CacheManager and its wiring."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g
from redis import Redis
from redis.cluster import RedisCluster
from werkzeug.local import LocalProxy

from electro_isla.cache.breaker import REDIS_ERRORS, RedisHealth
from electro_isla.cache.clients import build_client
from electro_isla.cache.listeners import install_listeners, invalidate_after_commit
from electro_isla.cache.manager import BYPASS, HIT, MISS, CacheManager, CacheUnavailable
from electro_isla.extensions import bulk_written, cache

__all__ = [
    "BYPASS",
    "REDIS_ERRORS",
    "HIT",
    "MISS",
    "RedisHealth",
    "CacheManager",
    "CacheUnavailable",
    "cache_manager",
    "invalidate_after_commit",
    "redis_health",
    "register_cache",
]

EXTENSION_KEY = "electro_isla.cache"


def _manager() -> CacheManager:
    return current_app.extensions[EXTENSION_KEY]


cache_manager: CacheManager = LocalProxy(_manager)  # type: ignore[assignment]


@bulk_written.connect
def invalidate_bulk_writes(session: Any, tables: list[str]) -> None:
    """The legacy bulk methods fire no mapper event: invalidate their tables on commit."""
    invalidate_after_commit(session, *tables)


def caching_config(app: Flask) -> dict[str, Any]:
    prefix = app.config["CACHE_KEY_PREFIX"]
    settings: dict[str, Any] = {"CACHE_KEY_PREFIX": f"{prefix}:", "CACHE_DEFAULT_TIMEOUT": 300}
    if app.extensions.get("electro_isla.redis") is None:
        settings.update(
            CACHE_TYPE="electro_isla.cache.backends.JsonSimpleCache", CACHE_THRESHOLD=2000
        )
    else:
        settings["CACHE_TYPE"] = "electro_isla.cache.backends.JsonRedisCache"
    return settings


def shared_redis(app: Flask) -> Redis | RedisCluster | None:
    """The Redis client every shared store uses (cache, revocations, limits)."""
    return app.extensions.get("electro_isla.redis")


def redis_health(app: Flask) -> RedisHealth:
    """The shared Redis behind the cache's circuit breaker, for the stores beside the cache."""
    return RedisHealth(shared_redis(app), app.extensions[EXTENSION_KEY].breaker)


def register_cache(app: Flask) -> None:
    try:
        client = build_client(app.config)
    except REDIS_ERRORS as exc:
        # Only a cluster client connects when built (to learn the slots). A worker
        # starting while no node answers serves from the database instead of
        # failing to boot; it uses the cluster again once it is replaced (every
        # GUNICORN_MAX_REQUESTS requests, or at the next deploy).
        logging.getLogger("electro_isla.cache").error(
            "ERROR cache unavailable at start, serving from the database: %s: %s",
            type(exc).__name__,
            exc,
        )
        client = None
        app.config["CACHE_ENABLED"] = False
    app.extensions["electro_isla.redis"] = client
    cache.init_app(app, config=caching_config(app))
    backend = cache.cache
    app.extensions[EXTENSION_KEY] = CacheManager(app, backend, client)
    install_listeners()

    from electro_isla.cache import logs

    logs.subscribe(app)

    @app.after_request
    def cache_headers(response: Response) -> Response:
        status = g.pop("cache_status", None)
        if status is not None:
            response.headers["X-Cache"] = status
            response.headers["Cache-Control"] = "private, no-cache"
        return response

    # App-context teardown covers requests, CLI commands and worker threads alike.
    @app.teardown_appcontext
    def flush_cache_stats(_exc: BaseException | None) -> None:
        manager = app.extensions[EXTENSION_KEY]
        manager.flush_stats()
