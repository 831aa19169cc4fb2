"""The embedded default (SQLite, in-process cache) runs the same catalogue and order code."""

from __future__ import annotations

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import user_with_role


def test_catalogue_and_orders_on_sqlite(sqlite_app):
    app = sqlite_app
    with app.app_context():
        pid = ProductoFactory(nombre="Lámpara 50% LED", precio="19.99", descuento=10, stock=3).id
    _, cliente = user_with_role(app, "cliente")
    _, admin = user_with_role(app, "admin")
    client = app.test_client()

    listed = client.get("/api/productos/?q=lámpara 50%25")
    assert listed.status_code == 200
    assert listed.headers["X-Cache"] == "MISS"
    assert [p["id"] for p in listed.json["results"]] == [pid]
    assert client.get("/api/productos/?q=lámpara 50%25").headers["X-Cache"] == "HIT"
    assert client.get("/api/productos/?q=60%25").json["count"] == 0

    body = {
        "items": [{"producto_id": pid, "cantidad": 2}],
        "metodo_pago": "transferencia",
        "direccion_entrega": "Calle 1",
        "telefono": "555",
    }
    created = client.post("/api/pedidos/", json=body, headers=cliente)
    assert created.status_code == 201
    assert created.json["total"] == 35.98  # 2 x 17.99
    assert client.post("/api/pedidos/", json=body, headers=cliente).status_code == 409
    assert client.get(f"/api/productos/{pid}/").json["stock"] == 1

    url = f"/api/admin/pedidos/{created.json['id']}/"
    assert client.patch(url, json={"estado": "cancelado"}, headers=admin).status_code == 200
    with app.app_context():
        assert _db.session.get(Producto, pid).stock == 3
    assert client.get(f"/api/productos/{pid}/").json["stock"] == 3
    assert client.get("/api/mis-pedidos/", headers=cliente).json["count"] == 1


def test_an_order_that_loses_the_race_for_stock_says_what_it_asked_for(sqlite_app, monkeypatch):
    """SQLite takes no read lock: the stock read may be sold before the UPDATE. The 409
    then names the product, what is left and what was asked, like the usual one."""
    from sqlalchemy.orm.attributes import set_committed_value

    from electro_isla.pedidos import service

    with sqlite_app.app_context():
        pid = ProductoFactory(nombre="Ventilador", precio="20.00", stock=1).id
    _, cliente = user_with_role(sqlite_app, "cliente")
    read = service._lock_productos

    def read_before_a_sale(ids):  # noqa: ANN001, ANN202
        productos = read(ids)
        for producto in productos.values():
            set_committed_value(producto, "stock", 5)  # what it read before the sale
        return productos

    monkeypatch.setattr(service, "_lock_productos", read_before_a_sale)
    body = {
        "items": [{"producto_id": pid, "cantidad": 3}],
        "metodo_pago": "efectivo",
        "direccion_entrega": "Calle 1",
        "telefono": "555",
    }
    response = sqlite_app.test_client().post("/api/pedidos/", json=body, headers=cliente)
    assert response.status_code == 409
    assert response.json["message"] == "Not enough stock: Ventilador (available 1, requested 3)"
    with sqlite_app.app_context():
        assert _db.session.get(Producto, pid).stock == 1
