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
