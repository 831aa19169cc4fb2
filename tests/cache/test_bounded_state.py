"""Nothing an anonymous client sends leaves cache state that outlives the longest TTL.

Product ids and search strings are the client's choice: each one used to leave
a generation counter (Redis: a key without expiry; in-process: a dict entry)
and, in-process, a lock, forever.
"""

from __future__ import annotations

import random
import time

from electro_isla.cache import cache_manager, stores
from electro_isla.cache.registry import REGISTRY
from electro_isla.extensions import db
from tests.cache.support import add_producto, manager_of, raw_redis

RANDOM_IDS = 1500
RANDOM_QUERIES = 300


def flood(app) -> None:
    client = app.test_client()
    rng = random.Random(11)
    for _ in range(RANDOM_IDS):
        assert client.get(f"/api/productos/{rng.randint(1, 2**31 - 1)}/").status_code == 404
    for _ in range(RANDOM_QUERIES):
        assert client.get(f"/api/productos/?q=x{rng.getrandbits(64):x}").status_code == 200


def test_redis_keys_left_by_random_ids_and_queries_all_expire(app):
    add_producto(app)
    flood(app)
    redis = raw_redis(app)
    prefix = app.config["CACHE_KEY_PREFIX"]
    with app.app_context():
        longest = max(cache_manager.ttls.values())
        manager = manager_of(app)
        counters = {manager.keys.stats_key()} | {manager.keys.stats_key(n) for n in REGISTRY}
    keys = [k.decode() for k in redis.scan_iter(f"{prefix}:*", count=1000)]
    assert len(keys) > RANDOM_IDS  # the flood really reached Redis
    # Only the statistics counters (one hash per cached name) have no expiry.
    forever = [k for k in keys if k not in counters and not 0 < redis.ttl(k) <= longest]
    assert forever == []


class FrozenClock:
    """The store's clock, moved by the test: the flood takes no time, then a TTL passes."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    time_ns = staticmethod(time.time_ns)


def test_in_process_generations_and_locks_are_dropped_after_the_longest_ttl(
    make_sqlite_app, monkeypatch
):
    clock = FrozenClock()
    monkeypatch.setattr(stores, "time", clock)

    app = make_sqlite_app(create_all=True, CACHE_TTL_OVERRIDES=dict.fromkeys(REGISTRY, 60))
    store = manager_of(app).store
    flood(app)
    assert len(store) > RANDOM_IDS
    clock.now += 61
    assert app.test_client().get("/api/productos/1/").status_code == 404
    assert len(store) <= 5


def test_in_process_store_is_bounded_by_count_too(make_sqlite_app):
    """3,000 random product ids within one TTL used to leave 6,001 entries (a generation
    and a lock each, plus the name's): now at most LOCAL_MAX_KEYS of each."""
    app = make_sqlite_app(create_all=True)
    store = manager_of(app).store
    store.max_keys = 500  # the same rule as LOCAL_MAX_KEYS, at a size the test can pass
    rng = random.Random(5)

    def flood(n: int) -> None:
        with app.test_request_context():
            for _ in range(n):
                row = rng.randint(1, 2**31 - 1)
                cache_manager.get("producto", lambda r=row: {"id": r}, row=row)

    flood(3000)
    assert len(store) <= 2 * 500
    assert stores.LOCAL_MAX_KEYS <= 4096
    # Eviction keeps freshness: a product whose generation was pushed out is
    # re-seeded above every number it held, and a write is still seen.
    client = app.test_client()
    producto_id = add_producto(app, "10.00")
    assert client.get(f"/api/productos/{producto_id}/").json["precio"] == 10.0
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
    flood(600)
    assert client.get(f"/api/productos/{producto_id}/").json["precio"] == 10.0
    with app.app_context():
        from electro_isla.catalogo.models import Producto

        db.session.get(Producto, producto_id).precio = 12
        db.session.commit()
    assert client.get(f"/api/productos/{producto_id}/").json["precio"] == 12.0
