"""Cache-Control and nosniff on responses that did not choose their own (electro_isla/headers.py)."""

from __future__ import annotations

from tests.auth.support import login, make_usuario, refresh_cookie
from tests.helpers import user_with_role


def test_token_responses_are_never_stored(app, client):
    make_usuario(app, username="guardada")
    logged = login(client, "guardada")
    assert logged.status_code == 200
    assert logged.headers["Cache-Control"] == "no-store"
    assert refresh_cookie(client)
    refreshed = client.post("/api/auth/refresh/")
    assert refreshed.status_code == 200, refreshed.get_json()
    assert "accessToken" in refreshed.get_json()
    assert refreshed.headers["Cache-Control"] == "no-store"


def test_a_usuarios_data_and_the_staff_lists_are_never_stored(app, client):
    _uid, cliente = user_with_role(app, "cliente")
    _aid, admin = user_with_role(app, "admin")
    for path, headers in (
        ("/api/mis-pedidos/", cliente),
        ("/api/admin/users/", admin),
        ("/api/admin/pedidos/", admin),
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_json())
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path


def test_errors_are_not_stored_and_say_nosniff(client):
    response = client.get("/api/mis-pedidos/")
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_what_chose_its_own_keeps_it_and_a_304_is_revalidated(app, client):
    _uid, cliente = user_with_role(app, "cliente")
    perfil = client.get("/api/perfil/", headers=cliente)
    assert perfil.status_code == 200
    assert perfil.headers["X-Cache"] in ("HIT", "MISS")
    assert perfil.headers["Cache-Control"] == "private, no-cache"
    _aid, admin = user_with_role(app, "admin")
    path = "/api/admin/estadisticas/ventas/"
    first = client.get(path, headers=admin)
    assert first.status_code == 200
    again = client.get(path, headers={**admin, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == "private, no-cache"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_an_empty_204_carries_no_content_type(app, client):
    """A DRF client's probe: the DELETE's 204 said application/json with no body."""
    _uid, admin = user_with_role(app, "admin")
    producto = client.post(
        "/api/admin/productos/",
        json={"nombre": "Radio", "precio": "10.00", "stock": 1, "categoria": "otros"},
        headers=admin,
    )
    assert producto.status_code == 201, producto.json
    response = client.delete(f"/api/admin/productos/{producto.json['id']}/", headers=admin)
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
