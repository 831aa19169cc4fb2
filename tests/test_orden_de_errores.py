"""Which error a request gets when several apply: DRF's order. Routing (404, 405,
308) first, then authentication (401) and permissions (403), then the body (415,
400, 422), which DRF reads lazily inside the handler. A DRF client's probe got a
415 or 422 where the route or the credentials were what was wrong."""

from __future__ import annotations

import pytest

from tests.helpers import user_with_role

DEEP = "[" * 100_000 + "]" * 100_000
SURROGATE = '{"first_name": "\\ud800"}'
TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/api/nope/", "x", TEXT, 404),
        ("POST", "/api/nope/", DEEP, JSON, 404),
        ("POST", "/api/productos/", "x", TEXT, 405),
        ("POST", "/api/productos/", SURROGATE, JSON, 405),
        ("POST", "/api/productos", "x", TEXT, 308),
        ("POST", "/api/admin/productos/", "nombre=x", TEXT, 401),
        ("PATCH", "/api/perfil/", SURROGATE, JSON, 401),
        ("PATCH", "/api/perfil/", DEEP, JSON, 401),
        ("POST", "/api/admin/productos/", "<a/>", {"Content-Type": "text/xml"}, 403),
        ("PATCH", "/api/admin/productos/1/", SURROGATE, JSON, 403),
    ],
)
def test_route_and_credentials_are_answered_before_the_body(
    app, client, method, path, body, headers, status
):
    if status == 403:
        headers = {**headers, **user_with_role(app, "cliente")[1]}
    response = client.open(path, method=method, data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.get_json()["code"] == status


def test_a_body_is_still_checked_once_the_caller_may_send_it(app, client):
    _uid, staff = user_with_role(app, "trabajador")
    wrong_type = client.post("/api/admin/productos/", data="x", headers={**staff, **TEXT})
    assert wrong_type.status_code == 415
    surrogate = client.patch("/api/perfil/", data=SURROGATE, headers={**staff, **JSON})
    assert surrogate.status_code == 422
    assert set(surrogate.get_json()["errors"]) == {"first_name"}
    deep = client.patch("/api/perfil/", data=DEEP, headers={**staff, **JSON})
    assert deep.status_code == 400


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/api/admin/productos/99999/", "PATCH", {"precio": -1}),
        ("/api/admin/pedidos/99999/", "PATCH", {"estado": "zzz"}),
        ("/api/admin/users/99999/", "PATCH", {"rol": "zzz"}),
        ("/api/admin/pedidos/99999/asignar_mensajero/", "POST", {"mensajero_id": "x"}),
        ("/api/admin/productos/99999/", "PATCH", None),
    ],
)
def test_an_object_that_does_not_exist_is_a_404_whatever_the_body(app, client, path, method, body):
    """DRF's update looks the object up (get_object) before validating the body."""
    _uid, admin = user_with_role(app, "admin")
    response = client.open(path, method=method, json=body, headers=admin)
    assert response.status_code == 404, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("body", [{"first_name": 123}, {"rol": "bogus"}, {"first_name": "x"}])
def test_a_trabajador_naming_an_admin_is_a_403_whatever_the_body(app, client, body):
    """DRF's object permission (get_object) comes before the serializer: a DRF client's
    probe got a 422 for a bad field where a valid one was the 403."""
    admin_id, _admin = user_with_role(app, "admin")
    _uid, trabajador = user_with_role(app, "trabajador")
    response = client.patch(f"/api/admin/users/{admin_id}/", json=body, headers=trabajador)
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
