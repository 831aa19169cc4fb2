"""Helpers for the cache tests: productos, a probe endpoint, raw Redis access."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import redis
from flask import Blueprint, Flask, jsonify

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from electro_isla.shared_store import shared_redis
from electro_isla.shared_store.clients import build_client


def add_producto(app: Flask, precio: str = "10.00", **fields: Any) -> int:
    with app.app_context():
        producto = Producto(
            nombre=fields.pop("nombre", "Radio"),
            precio=Decimal(precio),
            stock=fields.pop("stock", 5),
            categoria=fields.pop("categoria", "otros"),
            **fields,
        )
        db.session.add(producto)
        db.session.commit()
        return producto.id


def producto_fields(producto_id: int) -> dict[str, Any] | None:
    producto = db.session.get(Producto, producto_id)
    if producto is None:
        return None
    return {"id": producto.id, "precio": producto.precio, "stock": producto.stock}


def add_probe(app: Flask) -> Flask:
    """A test-only cached endpoint, independent of the catalogue's views."""
    bp = Blueprint("cache_probe", __name__)

    @bp.get("/_probe/productos/<int:producto_id>")
    def probe(producto_id: int):  # noqa: ANN202
        data = cache_manager.get("producto", lambda: producto_fields(producto_id), row=producto_id)
        return jsonify(data)

    app.register_blueprint(bp)
    return app


def raw_redis(app: Flask) -> redis.Redis | redis.RedisCluster:
    """A client of the app's Redis in its mode (a cluster client scans every node)."""
    client = build_client(app.config)
    assert client is not None
    return client


def manager_of(app: Flask):  # noqa: ANN201
    return app.extensions["electro_isla.cache"]


def counting_round_trips(app: Flask, monkeypatch: Any) -> list[str]:
    """Every Redis call the app's shared client makes from now on (a pipeline counts once)."""
    client = shared_redis(app).resolve()  # the real client the lazy one stands for
    calls: list[str] = []
    execute = client.execute_command
    pipeline = client.pipeline

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(str(args[0]))
        return execute(*args, **kwargs)

    def counted_pipeline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append("pipeline")
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counted)
    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    return calls
