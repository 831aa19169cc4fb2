"""The cache layer: Flask-Caching backends, the CacheManager and its wiring."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.local import LocalProxy

from electro_isla.cache.backends import REDIS_BACKENDS
from electro_isla.cache.breaker import RedisHealth
from electro_isla.cache.listeners import install_listeners, invalidate_after_commit
from electro_isla.cache.manager import BYPASS, HIT, MISS, CacheManager, CacheUnavailable
from electro_isla.extensions import cache

__all__ = [
    "BYPASS",
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


def redis_options(app: Flask) -> dict[str, Any]:
    """Client options: short timeouts and no retries, so an outage costs milliseconds."""
    timeout = app.config["REDIS_SOCKET_TIMEOUT"]
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


def caching_config(app: Flask) -> dict[str, Any]:
    prefix = app.config["CACHE_KEY_PREFIX"]
    settings: dict[str, Any] = {"CACHE_KEY_PREFIX": f"{prefix}:", "CACHE_DEFAULT_TIMEOUT": 300}
    url = app.config.get("REDIS_URL")
    if not url:
        settings.update(
            CACHE_TYPE="electro_isla.cache.backends.JsonSimpleCache", CACHE_THRESHOLD=2000
        )
        return settings
    mode = app.config["REDIS_MODE"]
    settings["CACHE_TYPE"] = REDIS_BACKENDS[mode]
    settings["CACHE_OPTIONS"] = redis_options(app)
    if mode == "standalone":
        settings["CACHE_REDIS_URL"] = url
    elif mode == "sentinel":
        settings["CACHE_REDIS_SENTINELS"] = [
            tuple(hp.rsplit(":", 1)) for hp in app.config["REDIS_SENTINELS"].split(",") if hp
        ]
        settings["CACHE_REDIS_SENTINEL_MASTER"] = app.config["REDIS_SENTINEL_MASTER"]
    else:
        settings["CACHE_REDIS_CLUSTER"] = url
    return settings


def shared_redis(app: Flask) -> Redis | None:
    """The Redis client every shared store uses (cache, revocations, limits)."""
    return app.extensions.get("electro_isla.redis")


def redis_health(app: Flask) -> RedisHealth:
    """The shared Redis behind the cache's circuit breaker, for the stores beside the cache."""
    return RedisHealth(shared_redis(app), app.extensions[EXTENSION_KEY].breaker)


def register_cache(app: Flask) -> None:
    cache.init_app(app, config=caching_config(app))
    backend = cache.cache
    client = getattr(backend, "_write_client", None) if app.config.get("REDIS_URL") else None
    app.extensions["electro_isla.redis"] = client
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
