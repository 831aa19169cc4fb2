"""Two API hosts on one PostgreSQL and one Redis, without a shared temp directory.

Redis hangs while host A commits a write: A's bump cannot be applied and is
recorded as pending. Once Redis answers again, host B (which never saw the outage and
has its own marker-file directory) must not serve the entry that bump should
have killed.
"""

from __future__ import annotations

import time
from decimal import Decimal

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla_testing.servers import RedisServer
from tests.cache.support import add_probe, add_producto, manager_of

CHECK_MS = 250


def host(make_app, redis: RedisServer, tmp_path, name: str):  # noqa: ANN201
    return add_probe(
        make_app(
            REDIS_URL=redis.url,
            REDIS_SOCKET_TIMEOUT=0.2,
            CACHE_CIRCUIT_RESET_SECONDS=0.5,
            CACHE_PENDING_DIR=str(tmp_path / name / "pending"),
            CACHE_PENDING_CHECK_MS=CHECK_MS,
        )
    )


def test_a_write_lost_on_one_host_is_not_served_stale_by_another(make_app, own_redis, tmp_path):
    host_a = host(make_app, own_redis, tmp_path, "a")
    host_b = host(make_app, own_redis, tmp_path, "b")
    producto_id = add_producto(host_a, "10.00")
    a, b = host_a.test_client(), host_b.test_client()
    for client in (a, b):
        client.get(f"/_probe/productos/{producto_id}")
    assert b.get(f"/_probe/productos/{producto_id}").headers["X-Cache"] == "HIT"

    own_redis.pause()
    try:
        # A meets the hung Redis first (its breaker opens), so its bump is never
        # sent: a bump that was sent would still run once Redis wakes up.
        assert a.get(f"/_probe/productos/{producto_id}").headers["X-Cache"] == "BYPASS"
        with host_a.app_context():
            _db.session.get(Producto, producto_id).precio = Decimal("20.00")
            _db.session.commit()  # kept as pending
        assert manager_of(host_a).pending_invalidations > 0
    finally:
        own_redis.resume()
    assert not (tmp_path / "b" / "pending").exists()  # nothing reached B's directory
    time.sleep(CHECK_MS / 1000)  # the documented bound on how soon B looks

    response = b.get(f"/_probe/productos/{producto_id}")
    assert response.json["precio"] == 20.0, response.headers["X-Cache"]
    assert response.headers["X-Cache"] == "MISS"  # B replayed A's bump, then cached again
    assert manager_of(host_b).pending_invalidations == 0
    assert a.get(f"/_probe/productos/{producto_id}").json["precio"] == 20.0
