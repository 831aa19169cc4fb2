"""Concurrent orders on real PostgreSQL: row locks, never oversell, never deadlock."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import DetallePedido, Pedido
from tests.catalogo.support import quick_user
from tests.factories import ProductoFactory

BODY = {"metodo_pago": "tarjeta", "direccion_entrega": "Calle 1", "telefono": "555"}


def run_together(n: int, request: Callable[[int], int]) -> Counter[int]:
    """Run `request(i)` in n threads released at the same instant; count statuses."""
    barrier = threading.Barrier(n)

    def worker(i: int) -> int:
        barrier.wait()
        return request(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Counter(pool.map(worker, range(n)))


def test_forty_concurrent_orders_for_ten_units_sell_exactly_ten(app):
    with app.app_context():
        assert _db.engine.dialect.name == "postgresql"
        pid = ProductoFactory(stock=10).id
    headers = [quick_user(app, "cliente")[1] for _ in range(4)]

    def order(i: int) -> int:
        # Each thread has its own client, so its own request context and session.
        response = app.test_client().post(
            "/api/pedidos/",
            json={"items": [{"producto_id": pid, "cantidad": 1}], **BODY},
            headers=headers[i % 4],
        )
        return response.status_code

    statuses = run_together(40, order)

    assert statuses == Counter({201: 10, 409: 30})
    with app.app_context():
        assert _db.session.get(Producto, pid).stock == 0
        assert _db.session.scalar(select(func.count()).select_from(Pedido)) == 10
        sold = _db.session.scalar(select(func.sum(DetallePedido.cantidad)))
        assert sold == 10
    # The cached catalogue agrees with the database.
    assert app.test_client().get(f"/api/productos/{pid}/").json["stock"] == 0


def test_orders_locking_the_same_productos_in_opposite_order_do_not_deadlock(app):
    """Half the orders list (a, b), half (b, a): locks are taken in id order anyway."""
    with app.app_context():
        a = ProductoFactory(stock=15).id
        b = ProductoFactory(stock=15).id
    headers = quick_user(app, "cliente")[1]

    def order(i: int) -> int:
        first, second = (a, b) if i % 2 else (b, a)
        items = [{"producto_id": first, "cantidad": 1}, {"producto_id": second, "cantidad": 1}]
        response = app.test_client().post(
            "/api/pedidos/", json={"items": items, **BODY}, headers=headers
        )
        return response.status_code

    statuses = run_together(20, order)

    assert statuses == Counter({201: 15, 409: 5})
    with app.app_context():
        assert [_db.session.get(Producto, pid).stock for pid in (a, b)] == [0, 0]


def test_concurrent_cancels_give_the_stock_back_once(app):
    with app.app_context():
        pid = ProductoFactory(stock=5).id
    _, cliente = quick_user(app, "cliente")
    _, admin = quick_user(app, "admin")
    client = app.test_client()
    pedido = client.post(
        "/api/pedidos/",
        json={"items": [{"producto_id": pid, "cantidad": 3}], **BODY},
        headers=cliente,
    ).json

    def cancel(_: int) -> int:
        response = app.test_client().patch(
            f"/api/admin/pedidos/{pedido['id']}/", json={"estado": "cancelado"}, headers=admin
        )
        return response.status_code

    statuses = run_together(10, cancel)

    assert statuses == Counter({200: 1, 409: 9})
    with app.app_context():
        assert _db.session.get(Producto, pid).stock == 5
