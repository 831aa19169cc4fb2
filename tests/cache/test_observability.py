"""Statistics shared by workers, JSON in Redis, TTL overrides, cache.log, signals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from electro_isla.cache import cache_manager, signals
from electro_isla.cache.registry import REGISTRY
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla_testing.servers import free_port
from tests.cache.support import add_producto, producto_fields, raw_redis


def lookup(app, producto_id: int):  # noqa: ANN201
    with app.app_context():
        return cache_manager.get("producto", lambda: producto_fields(producto_id), row=producto_id)


def stats(app) -> dict:
    with app.app_context():
        return cache_manager.get_stats()


def test_stats_are_counted_across_two_app_instances_sharing_redis(make_app):
    worker_a, worker_b = make_app(), make_app()
    producto_id = add_producto(worker_a, "10.00")
    lookup(worker_a, producto_id)  # miss + fetch
    lookup(worker_b, producto_id)  # hit
    lookup(worker_b, producto_id)  # hit
    with worker_b.app_context():
        cache_manager.get("metodos_pago", lambda: [{"metodo_pago": "efectivo"}])  # miss
    with worker_a.app_context():
        _db.session.get(Producto, producto_id).stock = 1
        _db.session.commit()  # invalidations counted by worker A
    for seen in (stats(worker_a), stats(worker_b)):
        assert (seen["hits"], seen["misses"], seen["fetches"]) == (2, 2, 2)
        assert seen["hit_ratio"] == 0.5
        assert seen["families"]["producto"] == {
            "hits": 2,
            "misses": 1,
            "fetches": 1,
            "invalidations": 2,  # the INSERT and the UPDATE of that row
        }
        assert seen["families"]["metodos_pago"]["misses"] == 1
        assert seen["families"]["lista_productos"]["invalidations"] == 2
        assert seen["invalidations"] >= 4
        assert seen["errors"] == 0
        assert seen["backend"] == "redis"
        assert seen["last_updated"]
        assert set(seen["families"]) == set(REGISTRY)


def test_hit_ratio_is_zero_without_lookups(app):
    assert stats(app)["hit_ratio"] == 0.0


def test_values_are_stored_as_json_not_pickle(app):
    producto_id = add_producto(app, "10.50")
    value = lookup(app, producto_id)
    with app.app_context():
        key = cache_manager.key_for("producto", producto_id)
    raw = raw_redis(app).get(key)
    assert raw[:1] not in (b"!", b"\x80")  # cachelib's pickle marker, pickle's opcode
    assert json.loads(raw) == value == {"id": producto_id, "precio": 10.5, "stock": 5}
    assert lookup(app, producto_id) == value  # HIT and MISS give the same shape


def test_ttl_overrides_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("CACHE_TTL_PRODUCTO", "7")
    monkeypatch.setenv("CACHE_TTL_ESTADISTICAS_VENTAS", "120")
    app = make_app()
    ttl = stats(app)["ttl"]
    assert ttl["producto"] == 7
    assert ttl["estadisticas_ventas"] == 120
    assert ttl["lista_productos"] == 300  # untouched default
    assert ttl["perfil_usuario"] == 3600
    producto_id = add_producto(app)
    lookup(app, producto_id)
    with app.app_context():
        key = cache_manager.key_for("producto", producto_id)
    assert 0 < raw_redis(app).ttl(key) <= 7


def test_cache_log_has_a_line_per_event_with_the_key(make_app, tmp_path):
    log_dir = tmp_path / "logs-here"
    app = make_app(LOG_DIR=str(log_dir))
    producto_id = add_producto(app)
    lookup(app, producto_id)
    lookup(app, producto_id)
    with app.app_context():
        key = cache_manager.key_for("producto", producto_id)
        gen_key = cache_manager.gen_key("producto", producto_id)
        _db.session.get(Producto, producto_id).precio = Decimal("3.00")
        _db.session.commit()
    broken = make_app(LOG_DIR=str(log_dir), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    lookup(broken, producto_id)
    lines = Path(log_dir / "cache.log").read_text().splitlines()
    assert any(line.endswith(f"MISS {key}") for line in lines)
    assert any(line.endswith(f"HIT {key}") for line in lines)
    assert any(f"SET {key} ttl=300s" in line for line in lines)
    assert any(line.endswith(f"INVALIDATE {gen_key}") for line in lines)
    assert any(" ERROR " in line and ":v:{producto}:" in line for line in lines)


def test_signals_fire_for_hit_miss_fetch_and_invalidate(app):
    seen: list[tuple[str, str]] = []
    producto_id = add_producto(app)

    def record(kind):  # noqa: ANN001, ANN202
        return lambda _sender, **kw: seen.append((kind, kw["name"]))

    receivers = {
        signals.cache_hit: record("hit"),
        signals.cache_miss: record("miss"),
        signals.cache_fetch: record("fetch"),
        signals.cache_invalidate: record("invalidate"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, app)
    try:
        lookup(app, producto_id)
        lookup(app, producto_id)
        with app.app_context():
            cache_manager.invalidate(rows=[("producto", producto_id)])
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver, app)
    assert seen == [
        ("miss", "producto"),
        ("fetch", "producto"),
        ("hit", "producto"),
        ("invalidate", "producto"),
    ]


def test_in_process_backend_counts_too(sqlite_app):
    producto_id = add_producto(sqlite_app)
    lookup(sqlite_app, producto_id)
    lookup(sqlite_app, producto_id)
    seen = stats(sqlite_app)
    assert seen["backend"] == "simple"
    assert (seen["hits"], seen["misses"], seen["fetches"]) == (1, 1, 1)
