"""Typed text is stored without its surrounding whitespace, as DRF's CharField stores it
(trim_whitespace): a probe's "  Calle  " and "\\t555\\n" were stored as sent."""

from __future__ import annotations

from electro_isla.extensions import db
from electro_isla.pedidos.models import Pedido
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import user_with_role


def test_an_order_and_its_admin_patch_store_trimmed_text(app, client):
    with app.app_context():
        producto = ProductoFactory(stock=5).id
    _uid, cliente = user_with_role(app, "cliente")
    body = {
        "items": [{"producto_id": producto, "cantidad": 1}],
        "metodo_pago": "tarjeta",
        "direccion_entrega": "  Calle  ",
        "telefono": "\t555\n",
        "notas": " timbre roto ",
    }
    created = client.post("/api/pedidos/", json=body, headers=cliente)
    assert created.status_code == 201, created.get_json()
    pedido_id = created.get_json()["id"]
    _aid, admin = user_with_role(app, "admin")
    patched = client.patch(
        f"/api/admin/pedidos/{pedido_id}/", json={"direccion_entrega": " Calle 9 "}, headers=admin
    )
    assert patched.status_code == 200, patched.get_json()
    with app.app_context():
        pedido = db.session.get(Pedido, pedido_id)
        assert (pedido.direccion_entrega, pedido.telefono, pedido.notas) == (
            "Calle 9",
            "555",
            "timbre roto",
        )


def test_a_producto_a_perfil_and_a_registration_store_trimmed_text(app, client):
    _aid, admin = user_with_role(app, "admin")
    body = {"nombre": "  Televisor  ", "precio": "10.00", "stock": 1, "categoria": "otros"}
    created = client.post("/api/admin/productos/", json=body, headers=admin)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["nombre"] == "Televisor"
    uid, cliente = user_with_role(app, "cliente")
    perfil = client.patch("/api/perfil/", json={"first_name": "  Ana "}, headers=cliente)
    assert perfil.status_code == 200, perfil.get_json()
    registered = client.post(
        "/api/auth/register/",
        json={
            "username": "recorte",
            "email": "recorte@example.test",
            "password": "12345678",
            "last_name": " Pérez  ",
        },
    )
    assert registered.status_code == 201, registered.get_json()
    with app.app_context():
        assert db.session.get(Usuario, uid).first_name == "Ana"
        nuevo = db.session.execute(db.select(Usuario).filter_by(username="recorte")).scalar_one()
        assert nuevo.last_name == "Pérez"


def test_whitespace_alone_is_blank_after_trimming(app, client):
    _aid, admin = user_with_role(app, "admin")
    body = {"nombre": "   ", "precio": "10.00", "stock": 1, "categoria": "otros"}
    refused = client.post("/api/admin/productos/", json=body, headers=admin)
    assert refused.status_code == 422
    assert "nombre" in refused.get_json()["errors"]
