"""The cache layer: each app's CacheManager and its wiring (README: "The cache in one page")."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g
from werkzeug.local import LocalProxy

from electro_isla.cache import logs
from electro_isla.cache.listeners import install_listeners, invalidate_after_commit
from electro_isla.cache.manager import (
    BYPASS,
    EXTENSION_KEY,
    HIT,
    MISS,
    CacheManager,
    CacheUnavailable,
)
from electro_isla.database import bulk_written
from electro_isla.extensions import cache
from electro_isla.shared_store import REDIS_ERRORS, RedisHealth, redis_health, shared_redis

__all__ = [
    "BYPASS",
    "EXTENSION_KEY",
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
    "shared_redis",
]


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
    if shared_redis(app) is None:
        settings.update(
            CACHE_TYPE="electro_isla.cache.backends.JsonSimpleCache", CACHE_THRESHOLD=2000
        )
    else:
        settings["CACHE_TYPE"] = "electro_isla.cache.backends.JsonRedisCache"
    return settings


def register_cache(app: Flask) -> None:
    """The cache over the app's shared store (electro_isla.shared_store), built lazily."""
    client = shared_redis(app)
    cache.init_app(app, config=caching_config(app))
    backend = cache.cache
    app.extensions[EXTENSION_KEY] = CacheManager(app, backend, client)
    install_listeners()
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
