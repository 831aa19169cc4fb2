"""Flask-Caching backends that store JSON, never pickle.

Select with CACHE_TYPE = "electro_isla.cache.backends.<Class>". The Redis one
uses the client of `electro_isla.shared_store` for the configured mode
(standalone, sentinel or cluster), so cache, counters, locks, revocations and
login limits share one client with the same short timeouts.
"""

from __future__ import annotations

import logging
from typing import Any

from cachelib.serializers import JSONSerializer as _JSONSerializer
from flask import Flask
from flask_caching.backends.rediscache import RedisCache
from flask_caching.backends.simplecache import SimpleCache

from electro_isla.json import dumps, loads
from electro_isla.shared_store import shared_redis

log = logging.getLogger("electro_isla.cache")


class JSONSerializer(_JSONSerializer):
    """cachelib's JSON serializer, quiet about a missing key (Redis answers None).

    Through electro_isla.json, so a Decimal stored is a Decimal read back, exact
    (the stdlib would refuse to write it, and read any number back as a float).
    """

    def dumps(self, value: Any, *args: Any, **kwargs: Any) -> bytes | None:
        try:
            return dumps(value).encode()
        except (TypeError, ValueError) as exc:
            log.warning("cache value not stored: %s", exc)
            return None

    def loads(self, bvalue: Any, *args: Any, **kwargs: Any) -> Any:
        if bvalue is None:
            return None
        try:
            return loads(bvalue)
        except ValueError as exc:
            log.warning("cache value unreadable, treated as a miss: %s", exc)
            return None


class JsonRedisCache(RedisCache):
    serializer = JSONSerializer()

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> JsonRedisCache:
        """The app's shared client (any mode): single-key GET/SET work on a cluster too."""
        kwargs.update(host=shared_redis(app), key_prefix=config["CACHE_KEY_PREFIX"])
        return cls(*args, **kwargs)


class JsonSimpleCache(SimpleCache):
    serializer = JSONSerializer()
