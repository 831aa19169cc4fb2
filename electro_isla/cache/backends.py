"""Flask-Caching backends that store JSON, never pickle.

Select with CACHE_TYPE = "electro_isla.cache.backends.<Class>"; Flask-Caching's
own factories build them from CACHE_REDIS_* settings.
"""

from __future__ import annotations

from cachelib.serializers import JSONSerializer
from flask_caching.backends.rediscache import RedisCache, RedisClusterCache, RedisSentinelCache
from flask_caching.backends.simplecache import SimpleCache


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
