"""What the fuzzer found, kept as plain tests on PostgreSQL (SQLite hides integer overflow)."""

from __future__ import annotations

import pytest

from tests.helpers import user_with_role

TOO_BIG = (2**31, 2**63, 10**30)


@pytest.mark.parametrize("big", TOO_BIG)
def test_ids_beyond_the_integer_primary_keys_are_404_not_500(app, client, big):
    """PATCH /api/admin/users/2147483648/ reached PostgreSQL: "integer out of range", 500."""
    _, admin = user_with_role(app, "admin")
    calls = [
        ("get", f"/api/productos/{big}/", None),
        ("get", f"/api/admin/productos/{big}/", None),
        ("patch", f"/api/admin/productos/{big}/", {"stock": 1}),
        ("delete", f"/api/admin/productos/{big}/", None),
        ("get", f"/api/admin/pedidos/{big}/", None),
        ("patch", f"/api/admin/pedidos/{big}/", {"estado": "confirmado"}),
        ("post", f"/api/admin/pedidos/{big}/asignar_mensajero/", {"mensajero_id": 1}),
        ("patch", f"/api/admin/users/{big}/", {}),
    ]
    for method, path, body in calls:
        resp = getattr(client, method)(path, json=body, headers=admin)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.get_data()[:200])
        assert resp.json["code"] == 404


def test_the_document_states_the_id_bound(client):
    doc = client.get("/api/openapi.json").json
    item = doc["paths"]["/api/admin/users/{usuario_id}/"]
    params = item.get("parameters", []) + item["patch"].get("parameters", [])
    schema = next(p for p in params if p["name"] == "usuario_id")["schema"]
    assert schema["maximum"] == 2**31 - 1


@pytest.mark.parametrize("big", TOO_BIG)
def test_ids_beyond_the_integer_range_in_bodies_are_rejected_not_500(app, client, big):
    _, admin = user_with_role(app, "admin")
    _, cliente = user_with_role(app, "cliente")
    pedido = {
        "items": [{"producto_id": big, "cantidad": 1}],
        "metodo_pago": "efectivo",
        "direccion_entrega": "Calle 1",
        "telefono": "555-0100",
    }
    resp = client.post("/api/pedidos/", json=pedido, headers=cliente)
    assert 400 <= resp.status_code < 500, resp.get_data()[:300]
    resp = client.post(
        "/api/admin/pedidos/1/asignar_mensajero/", json={"mensajero_id": big}, headers=admin
    )
    assert 400 <= resp.status_code < 500, resp.get_data()[:300]
    resp = client.get(f"/api/admin/users/?q={big}", headers=admin)
    assert resp.status_code == 200


def test_nul_characters_are_a_422_and_write_nothing(app, client):
    """Stateful fuzzing: PATCH /api/admin/users/1/ {"last_name": "9\\u0000T4"} reached
    PostgreSQL ("text fields cannot contain NUL (0x00) bytes"): 500."""
    admin_id, admin = user_with_role(app, "admin", last_name="Antes")
    _, cliente = user_with_role(app, "cliente")
    calls = [
        ("patch", f"/api/admin/users/{admin_id}/", {"last_name": "9\x00T4"}, admin),
        ("patch", f"/api/admin/users/{admin_id}/", {"first_name": "\x00"}, admin),
        ("get", "/api/admin/users/?q=%00", None, admin),
        ("patch", "/api/perfil/", {"direccion": "Calle \x00 1"}, cliente),
        ("patch", "/api/perfil/", {"telefono": "\x00"}, cliente),
        ("get", "/api/productos/?q=a%00b", None, {}),
        ("post", "/api/auth/register/", {"username": "a\x00b", "email": "n@x.test", "password": "secreto-123"}, {}),
        ("post", "/api/auth/login/", {"username": "a\x00b", "password": "secreto-123"}, {}),
    ]  # fmt: skip
    for method, path, body, headers in calls:
        resp = getattr(client, method)(path, json=body, headers=headers)
        assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
        assert resp.json["code"] == resp.status_code
    perfil = client.get("/api/perfil/", headers=admin).json
    assert perfil["last_name"] == "Antes"
