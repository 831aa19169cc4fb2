"""Concurrent orders on real PostgreSQL and on SQLite: never oversell, never restock twice,
never deadlock."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import user_with_role

BODY = {"metodo_pago": "tarjeta", "direccion_entrega": "Calle 1", "telefono": "555"}


def run_together(n: int, request: Callable[[int], int]) -> Counter[int]:
    """Run `request(i)` in n threads released at the same instant; count statuses."""
    barrier = threading.Barrier(n)

    def worker(i: int) -> int:
        barrier.wait()
        return request(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Counter(pool.map(worker, range(n)))


@pytest.fixture
def sqlite_workers(make_sqlite_app) -> list[Flask]:
    """Two app instances on one SQLite file, each with its own in-process cache."""
    return [make_sqlite_app(create_all=True) for _ in range(2)]


@pytest.fixture(params=["postgresql", "sqlite"])
def workers(request) -> list[Flask]:
    """The instances concurrent requests reach: on PostgreSQL one app (rows locked FOR
    UPDATE); on SQLite, where FOR UPDATE does nothing, two sharing one file."""
    if request.param == "sqlite":
        apps = request.getfixturevalue("sqlite_workers")
    else:
        apps = [request.getfixturevalue("app")]
    with apps[0].app_context():
        assert _db.engine.dialect.name == request.param
    return apps


def test_forty_concurrent_orders_for_ten_units_sell_exactly_ten(workers):
    first = workers[0]
    with first.app_context():
        pid = ProductoFactory(stock=10).id
    headers = [user_with_role(first, "cliente")[1] for _ in range(4)]

    def order(i: int) -> int:
        # Each thread has its own client, so its own request context and session.
        response = (
            workers[i % len(workers)]
            .test_client()
            .post(
                "/api/pedidos/",
                json={"items": [{"producto_id": pid, "cantidad": 1}], **BODY},
                headers=headers[i % 4],
            )
        )
        return response.status_code

    statuses = run_together(40, order)

    assert statuses == Counter({201: 10, 409: 30})
    with first.app_context():
        assert _db.session.get(Producto, pid).stock == 0
        assert _db.session.scalar(select(func.count()).select_from(Pedido)) == 10
        sold = _db.session.scalar(select(func.sum(DetallePedido.cantidad)))
        assert sold == 10
    # The cached catalogue agrees with the database.
    assert first.test_client().get(f"/api/productos/{pid}/").json["stock"] == 0


def test_orders_locking_the_same_productos_in_opposite_order_do_not_deadlock(app):
    """Half the orders list (a, b), half (b, a): locks are taken in id order anyway."""
    with app.app_context():
        a = ProductoFactory(stock=15).id
        b = ProductoFactory(stock=15).id
    headers = user_with_role(app, "cliente")[1]

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


def test_concurrent_cancels_give_the_stock_back_once(workers):
    first = workers[0]
    with first.app_context():
        pid = ProductoFactory(stock=5).id
    _, cliente = user_with_role(first, "cliente")
    _, admin = user_with_role(first, "admin")
    pedido = (
        first.test_client()
        .post(
            "/api/pedidos/",
            json={"items": [{"producto_id": pid, "cantidad": 3}], **BODY},
            headers=cliente,
        )
        .json
    )

    def cancel(i: int) -> int:
        response = (
            workers[i % len(workers)]
            .test_client()
            .patch(
                f"/api/admin/pedidos/{pedido['id']}/", json={"estado": "cancelado"}, headers=admin
            )
        )
        return response.status_code

    statuses = run_together(10, cancel)

    assert statuses == Counter({200: 1, 409: 9})
    with first.app_context():
        assert _db.session.get(Producto, pid).stock == 5
        assert _db.session.get(Pedido, pedido["id"]).estado == "cancelado"


# -- the embedded default: SQLite, where FOR UPDATE does nothing -------------------------


def test_eight_orders_for_the_last_unit_on_sqlite_sell_one(sqlite_workers):
    first = sqlite_workers[0]
    with first.app_context():
        pid = ProductoFactory(stock=1).id
    _, headers = user_with_role(first, "cliente")
    client = first.test_client()
    assert client.get(f"/api/productos/{pid}/").json["stock"] == 1  # cached now

    def order(_: int) -> int:
        # One instance: its in-process cache is the one that must hear of the sale.
        return (
            first.test_client()
            .post(
                "/api/pedidos/",
                json={"items": [{"producto_id": pid, "cantidad": 1}], **BODY},
                headers=headers,
            )
            .status_code
        )

    assert run_together(8, order) == Counter({201: 1, 409: 7})
    # The row entry was invalidated although the stock moved by a Core UPDATE.
    assert client.get(f"/api/productos/{pid}/").json["stock"] == 0


# -- asignar_mensajero against a concurrent demotion ------------------------------------


def lock_waiters(app: Flask) -> int:
    with app.app_context(), _db.engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def assign_during_a_demotion(app: Flask, wait_until_blocked: Callable[[threading.Thread], None]):
    """Demote a mensajero in an open transaction, assign them meanwhile, then commit."""
    with app.app_context():
        pid = ProductoFactory(stock=5).id
    _, cliente = user_with_role(app, "cliente")
    _, admin = user_with_role(app, "admin")
    mensajero_id, _ = user_with_role(app, "mensajero")
    pedido = (
        app.test_client()
        .post(
            "/api/pedidos/",
            json={"items": [{"producto_id": pid, "cantidad": 1}], **BODY},
            headers=cliente,
        )
        .json
    )
    result: dict[str, int] = {}

    def assign() -> None:
        result["status"] = (
            app.test_client()
            .post(
                f"/api/admin/pedidos/{pedido['id']}/asignar_mensajero/",
                json={"mensajero_id": mensajero_id},
                headers=admin,
            )
            .status_code
        )

    with app.app_context(), _db.engine.connect() as demotion:
        demotion.execute(
            text("UPDATE usuarios SET rol = 'cliente' WHERE id = :u"), {"u": mensajero_id}
        )
        assigning = threading.Thread(target=assign)
        assigning.start()
        wait_until_blocked(assigning)
        demotion.commit()
    assigning.join(15)
    with app.app_context():
        return result.get("status"), _db.session.get(Pedido, pedido["id"]).mensajero_id


def test_assignment_waits_for_a_demotion_in_flight_on_postgresql(app):
    def blocked(thread: threading.Thread) -> None:
        deadline = time.monotonic() + 5
        while thread.is_alive() and not lock_waiters(app) and time.monotonic() < deadline:
            time.sleep(0.02)

    status, assigned = assign_during_a_demotion(app, blocked)
    assert (status, assigned) == (422, None)


def test_assignment_rechecks_the_role_when_it_writes_on_sqlite(sqlite_workers):
    def blocked(thread: threading.Thread) -> None:
        # SQLite shows no lock waits: give the request time to reach its write.
        thread.join(0.5)

    status, assigned = assign_during_a_demotion(sqlite_workers[0], blocked)
    assert (status, assigned) == (422, None)


def test_an_order_invalidates_its_productos_entries_only(app):
    """The stock UPDATEs bypass the mapper events: the rows they touched are noted
    explicitly, not the whole table (other productos stay cached)."""
    with app.app_context():
        sold, other = ProductoFactory(stock=3).id, ProductoFactory(stock=3).id
    _, cliente = user_with_role(app, "cliente")
    client = app.test_client()
    for pid in (sold, other):
        client.get(f"/api/productos/{pid}/")
    created = client.post(
        "/api/pedidos/",
        json={"items": [{"producto_id": sold, "cantidad": 2}], **BODY},
        headers=cliente,
    )
    assert created.status_code == 201
    fresh = client.get(f"/api/productos/{sold}/")
    assert (fresh.headers["X-Cache"], fresh.json["stock"]) == ("MISS", 1)
    assert client.get(f"/api/productos/{other}/").headers["X-Cache"] == "HIT"
    # Cancelling gives the stock back and invalidates that entry again.
    _, admin = user_with_role(app, "admin")
    url = f"/api/admin/pedidos/{created.json['id']}/"
    assert client.patch(url, json={"estado": "cancelado"}, headers=admin).status_code == 200
    assert client.get(f"/api/productos/{sold}/").json["stock"] == 3
    assert client.get(f"/api/productos/{other}/").headers["X-Cache"] == "HIT"
