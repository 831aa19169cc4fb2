"""Flask-Caching backends that store JSON, never pickle.

Select with CACHE_TYPE = "electro_isla.cache.backends.<Class>"; Flask-Caching's
own factories build them from CACHE_REDIS_* settings.
"""

from __future__ import annotations

from typing import Any

from cachelib.serializers import JSONSerializer as _JSONSerializer
from flask_caching.backends.rediscache import RedisCache, RedisClusterCache, RedisSentinelCache
from flask_caching.backends.simplecache import SimpleCache

from electro_isla.json import dumps, loads


class JSONSerializer(_JSONSerializer):
    """cachelib's JSON serializer, quiet about a missing key (Redis answers None).

    Through electro_isla.json, so a Decimal stored is a Decimal read back, exact
    (the stdlib would refuse to write it, and read any number back as a float).
    """

    def dumps(self, value: Any, *args: Any, **kwargs: Any) -> bytes | None:
        try:
            return dumps(value).encode()
        except (TypeError, ValueError) as exc:
            self._warn(exc)
            return None

    def loads(self, bvalue: Any, *args: Any, **kwargs: Any) -> Any:
        if bvalue is None:
            return None
        try:
            return loads(bvalue)
        except ValueError as exc:
            self._warn(exc)
            return None


class JsonRedisCache(RedisCache):
    serializer = JSONSerializer()


class JsonRedisSentinelCache(RedisSentinelCache):
    serializer = JSONSerializer()


class JsonRedisClusterCache(RedisClusterCache):
    serializer = JSONSerializer()


class JsonSimpleCache(SimpleCache):
    serializer = JSONSerializer()


REDIS_BACKENDS = {
    "standalone": "electro_isla.cache.backends.JsonRedisCache",
    "sentinel": "electro_isla.cache.backends.JsonRedisSentinelCache",
    "cluster": "electro_isla.cache.backends.JsonRedisClusterCache",
}
