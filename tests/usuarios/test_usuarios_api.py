"""/api/admin/users/ and /api/perfil/: success, the 401/403 matrix, validation, freshness."""

from __future__ import annotations

import pytest

from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import UsuarioFactory
from tests.helpers import ROLES, auth_headers, user_with_role, while_held

USUARIO_KEYS = {
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "nombre",
    "rol",
    "is_active",
    "date_joined",
    "telefono",
    "direccion",
}


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """scrypt costs ~0.3 s per factory usuario; these tests never log in with a password."""
    from werkzeug.security import generate_password_hash

    monkeypatch.setattr(
        "electro_isla.usuarios.models.generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )


def snapshot(app, usuario_id: int) -> dict:
    with app.app_context():
        usuario = _db.session.get(Usuario, usuario_id)
        return {
            "rol": usuario.rol,
            "is_active": usuario.is_active,
            "first_name": usuario.first_name,
            "last_name": usuario.last_name,
            "telefono": usuario.telefono,
            "direccion": usuario.direccion,
        }


def make_usuario(app, **fields) -> int:
    with app.app_context():
        return UsuarioFactory(**fields).id


# -- /api/admin/users/ ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rol", "status"),
    [("admin", 200), ("trabajador", 200), ("mensajero", 403), ("cliente", 403)],
)
def test_list_access_matrix(app, client, rol, status):
    _, headers = user_with_role(app, rol)
    response = client.get("/api/admin/users/", headers=headers)
    assert response.status_code == status
    assert response.is_json


def test_list_anonymous_and_bad_token_are_401(client):
    assert client.get("/api/admin/users/").status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    response = client.get("/api/admin/users/", headers=bad)
    assert response.status_code == 401
    assert response.json["code"] == 401


def test_empty_filters_are_dropped_as_the_contract_sends_them(app, client):
    _, headers = user_with_role(app, "admin", username="jefa")
    make_usuario(app, username="pedro", rol="mensajero", is_active=False)
    response = client.get("/api/admin/users/?q=&rol=&activo=&page=1", headers=headers)
    assert response.status_code == 200, response.json
    assert [u["username"] for u in response.json["results"]] == ["jefa", "pedro"]
    # An empty filter next to a real one leaves the real one in force.
    response = client.get("/api/admin/users/?q=&rol=mensajero&activo=", headers=headers)
    assert [u["username"] for u in response.json["results"]] == ["pedro"]
    # A wrong value is still refused.
    assert client.get("/api/admin/users/?rol=jefe", headers=headers).status_code == 422


def test_list_paginates_and_filters(app, client):
    _, headers = user_with_role(app, "admin", username="jefa", first_name="Ana", last_name="Ruiz")
    make_usuario(app, username="pedro", first_name="Pedro", last_name="Gómez", rol="mensajero")
    # Names spelt out: the factory's random ones could contain a searched term (a
    # Faker "Ruiz" once made `q=rUiZ` find two usuarios).
    make_usuario(
        app, username="luisa", email="luisa@tienda.cu", first_name="Luisa", last_name="Paz"
    )
    make_usuario(app, username="inactivo", first_name="Ina", last_name="Sol", is_active=False)
    for n in range(3):
        make_usuario(app, username=f"cliente_{n}", first_name="Cli", last_name="Mar")

    body = client.get("/api/admin/users/?page_size=2", headers=headers).json
    assert body["count"] == 7
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert "page=2" in body["next"]
    assert set(body["results"][0]) == USUARIO_KEYS
    assert [u["username"] for u in body["results"]] == ["jefa", "pedro"]
    assert body["results"][0]["nombre"] == "Ana Ruiz"

    last = client.get("/api/admin/users/?page=4&page_size=2", headers=headers).json
    assert [u["username"] for u in last["results"]] == ["cliente_2"]
    assert last["next"] is None
    past = client.get("/api/admin/users/?page=5&page_size=2", headers=headers)
    assert (past.status_code, past.json["message"]) == (404, "Invalid page.")

    def usernames(query: str) -> list[str]:
        response = client.get(f"/api/admin/users/?{query}", headers=headers)
        assert response.status_code == 200, response.json
        return [u["username"] for u in response.json["results"]]

    assert usernames("rol=mensajero") == ["pedro"]
    assert usernames("activo=false") == ["inactivo"]
    assert "inactivo" not in usernames("activo=true&page_size=100")
    assert usernames("q=gómez") == ["pedro"]  # last name
    assert usernames("q=PEDRO") == ["pedro"]  # case-insensitive
    assert usernames("q=tienda.cu") == ["luisa"]  # email
    assert usernames("q=rUiZ") == ["jefa"]
    assert usernames("q=cliente_") == ["cliente_0", "cliente_1", "cliente_2"]
    assert usernames("q=%25") == []  # a literal %, not a wildcard
    assert usernames("q=cli&rol=cliente") == ["cliente_0", "cliente_1", "cliente_2"]
    # Every word, each in any field (DRF's SearchFilter): a full name finds its usuario.
    assert usernames("q=Pedro Gómez") == ["pedro"]
    assert usernames("q=gómez,pedro") == ["pedro"]
    assert usernames("q=Pedro Ruiz") == []
    assert usernames('q="Pedro Gómez"') == []  # a quoted phrase is one word


@pytest.mark.parametrize(
    "query",
    ["rol=jefe", "activo=quizas", "page=0", "page_size=101", "page=x", "q=" + "x" * 101],
)
def test_list_bad_query_is_422(app, client, query):
    _, headers = user_with_role(app, "admin")
    response = client.get(f"/api/admin/users/?{query}", headers=headers)
    assert response.status_code == 422
    assert response.json["code"] == 422
    assert response.json["errors"]


def test_admin_patches_role_activation_and_names(app, client):
    _, headers = user_with_role(app, "admin")
    target = make_usuario(app, rol="cliente", first_name="Old", last_name="Name")
    response = client.patch(
        f"/api/admin/users/{target}/",
        json={"rol": "mensajero", "first_name": "Nuevo", "last_name": "Nombre", "is_active": False},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    assert set(response.json) == USUARIO_KEYS
    assert response.json["rol"] == "mensajero"
    assert response.json["nombre"] == "Nuevo Nombre"
    assert response.json["is_active"] is False
    assert snapshot(app, target)["rol"] == "mensajero"
    assert snapshot(app, target)["is_active"] is False


def test_admin_may_edit_and_grant_admin(app, client):
    _, headers = user_with_role(app, "admin")
    other_admin = make_usuario(app, rol="admin")
    target = make_usuario(app, rol="trabajador")
    assert (
        client.patch(
            f"/api/admin/users/{other_admin}/", json={"first_name": "X"}, headers=headers
        ).status_code
        == 200
    )
    response = client.patch(f"/api/admin/users/{target}/", json={"rol": "admin"}, headers=headers)
    assert response.status_code == 200
    assert snapshot(app, target)["rol"] == "admin"


def test_trabajador_may_edit_non_admins(app, client):
    _, headers = user_with_role(app, "trabajador")
    target = make_usuario(app, rol="cliente")
    response = client.patch(
        f"/api/admin/users/{target}/", json={"rol": "mensajero"}, headers=headers
    )
    assert response.status_code == 200
    assert snapshot(app, target)["rol"] == "mensajero"


def test_trabajador_may_not_edit_an_admin_nor_grant_admin(app, client):
    _, headers = user_with_role(app, "trabajador")
    admin = make_usuario(app, rol="admin", first_name="Jefa")
    cliente = make_usuario(app, rol="cliente")
    before_admin, before_cliente = snapshot(app, admin), snapshot(app, cliente)

    for body in ({"first_name": "Hacked"}, {"is_active": False}, {"rol": "cliente"}):
        response = client.patch(f"/api/admin/users/{admin}/", json=body, headers=headers)
        assert response.status_code == 403
        assert response.json["code"] == 403
    response = client.patch(
        f"/api/admin/users/{cliente}/", json={"rol": "admin", "first_name": "Y"}, headers=headers
    )
    assert response.status_code == 403
    assert snapshot(app, admin) == before_admin
    assert snapshot(app, cliente) == before_cliente


@pytest.mark.parametrize("rol", ["admin", "trabajador"])
def test_nobody_deactivates_or_demotes_their_own_account(app, client, rol):
    """The only admin deactivating or demoting themselves locked every admin out, with
    nothing in the API to undo it (found by a new-user probe)."""
    me, headers = user_with_role(app, rol, first_name="Yo")
    before = snapshot(app, me)
    for body in ({"is_active": False}, {"rol": "cliente"}, {"rol": "mensajero", "first_name": "X"}):
        response = client.patch(f"/api/admin/users/{me}/", json=body, headers=headers)
        assert response.status_code == 403, (body, response.json)
        assert "your own account" in response.json["message"]
    assert snapshot(app, me) == before
    # Their own names, and values left as they are, can still be sent.
    body = {"first_name": "Nueva", "rol": rol, "is_active": True}
    assert client.patch(f"/api/admin/users/{me}/", json=body, headers=headers).status_code == 200
    assert snapshot(app, me)["first_name"] == "Nueva"


def test_two_admins_deactivating_each_other_at_once_leave_one_active(app, client):
    """A deactivates B while B deactivates A: each passes the self check, and without
    a lock both commit and no admin is left. Here A's change is an open transaction,
    committed once B's request waits on a lock (or after 5 s: the old code never
    waits): B's request must then see it and refuse."""
    a, _ = user_with_role(app, "admin")
    b, b_headers = user_with_role(app, "admin")
    response = while_held(
        app,
        "UPDATE usuarios SET is_active = false WHERE id = :b",
        {"b": b},
        lambda: client.patch(
            f"/api/admin/users/{a}/", json={"is_active": False}, headers=b_headers
        ),
    )
    assert response.status_code == 409, response.json
    assert "last active admin" in response.json["message"]
    assert snapshot(app, a)["is_active"] is True
    assert snapshot(app, b)["is_active"] is False


def test_a_trabajadors_edit_racing_a_promotion_to_admin_is_refused(app, client):
    """A probe: an admin promoted a cliente while a trabajador's PATCH of it was between
    its check (not an admin) and its write; 7 of 40 such PATCHes got 200 and deactivated
    the new admin. Here the promotion is an open transaction, committed once the
    trabajador's request waits on a lock (or after 5 s: the old code never waits)."""
    target = make_usuario(app, rol="cliente", first_name="Base")
    _, headers = user_with_role(app, "trabajador")
    body = {"is_active": False, "first_name": "Cambiado"}
    response = while_held(
        app,
        "UPDATE usuarios SET rol = 'admin' WHERE id = :t",
        {"t": target},
        lambda: client.patch(f"/api/admin/users/{target}/", json=body, headers=headers),
    )
    assert response.status_code == 403, response.json
    assert response.json["message"] == "Only an admin can edit an admin or grant the admin role."
    after = snapshot(app, target)
    assert (after["rol"], after["is_active"], after["first_name"]) == ("admin", True, "Base")


@pytest.mark.parametrize(("rol", "status"), [("mensajero", 403), ("cliente", 403), (None, 401)])
def test_patch_user_denied(app, client, rol, status):
    target = make_usuario(app, rol="cliente", first_name="Igual")
    headers = user_with_role(app, rol)[1] if rol else {}
    before = snapshot(app, target)
    response = client.patch(f"/api/admin/users/{target}/", json={"rol": "admin"}, headers=headers)
    assert response.status_code == status
    assert snapshot(app, target) == before


def test_patch_unknown_user_is_404(app, client):
    _, headers = user_with_role(app, "admin")
    response = client.patch("/api/admin/users/999999/", json={"first_name": "X"}, headers=headers)
    assert response.status_code == 404
    assert response.json["code"] == 404


@pytest.mark.parametrize(
    "body",
    [
        {"rol": "jefe"},
        {"is_active": "no"},
        {"is_active": 0},
        {"is_active": None},
        {"first_name": "x" * 151},
        {"first_name": 5},
        {"username": "otro"},
        {"email": "x@y.z"},
        {"password": "12345678"},
        {"first_name": "Valid", "unknown": 1},
        ["rol", "admin"],
    ],
)
def test_patch_user_validation_writes_nothing(app, client, body):
    _, headers = user_with_role(app, "admin")
    target = make_usuario(app, rol="cliente", first_name="Igual")
    before = snapshot(app, target)
    response = client.patch(f"/api/admin/users/{target}/", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json["code"] == 422
    assert snapshot(app, target) == before


def test_patch_user_malformed_json_is_400(app, client):
    _, headers = user_with_role(app, "admin")
    target = make_usuario(app)
    response = client.patch(
        f"/api/admin/users/{target}/",
        data="{nope",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.is_json


def test_demoted_user_loses_access_on_next_request(app, client):
    _, admin = user_with_role(app, "admin")
    trabajador_id, trabajador = user_with_role(app, "trabajador")
    assert client.get("/api/admin/users/", headers=trabajador).status_code == 200

    client.patch(f"/api/admin/users/{trabajador_id}/", json={"rol": "cliente"}, headers=admin)
    assert client.get("/api/admin/users/", headers=trabajador).status_code == 403
    assert client.get("/api/perfil/", headers=trabajador).json["rol"] == "cliente"


def test_deactivated_user_loses_access_on_next_request(app, client):
    _, admin = user_with_role(app, "admin")
    target_id, target = user_with_role(app, "trabajador")
    assert client.get("/api/perfil/", headers=target).status_code == 200

    client.patch(f"/api/admin/users/{target_id}/", json={"is_active": False}, headers=admin)
    assert client.get("/api/perfil/", headers=target).status_code == 401
    assert client.get("/api/admin/users/", headers=target).status_code == 401

    client.patch(f"/api/admin/users/{target_id}/", json={"is_active": True}, headers=admin)
    assert client.get("/api/admin/users/", headers=target).status_code == 200


def test_demotion_through_another_worker_takes_effect(make_app):
    app1, app2 = make_app(), make_app()
    _, admin = user_with_role(app1, "admin")
    trabajador_id, trabajador = user_with_role(app1, "trabajador")
    assert app2.test_client().get("/api/admin/users/", headers=trabajador).status_code == 200
    app1.test_client().patch(
        f"/api/admin/users/{trabajador_id}/", json={"rol": "mensajero"}, headers=admin
    )
    assert app2.test_client().get("/api/admin/users/", headers=trabajador).status_code == 403


# -- /api/perfil/ ----------------------------------------------------------------


@pytest.mark.parametrize("rol", ROLES)
def test_perfil_get_own(app, client, rol):
    uid, headers = user_with_role(
        app, rol, first_name="Marta", last_name="Díaz", telefono="555-1234", direccion="Calle 5"
    )
    response = client.get("/api/perfil/", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert set(body) == USUARIO_KEYS
    assert body["id"] == uid
    assert body["rol"] == rol
    assert body["nombre"] == "Marta Díaz"
    assert body["telefono"] == "555-1234"
    assert body["direccion"] == "Calle 5"
    assert body["date_joined"].endswith("+00:00")
    assert "password_hash" not in body


def test_perfil_anonymous_is_401(client):
    assert client.get("/api/perfil/").status_code == 401
    response = client.patch("/api/perfil/", json={"first_name": "X"})
    assert response.status_code == 401
    assert response.json["code"] == 401


def test_perfil_is_cached_with_etag(app, client):
    _, headers = user_with_role(app, "cliente")
    first = client.get("/api/perfil/", headers=headers)
    second = client.get("/api/perfil/", headers=headers)
    # The auth check has its own short-lived entry (acceso_usuario): the profile's
    # first read is its own MISS, the next a HIT.
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.json == second.json
    etag = second.headers["ETag"]
    assert etag == first.headers["ETag"]
    again = client.get("/api/perfil/", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304


def test_perfil_patch_and_fresh_read(app, client):
    uid, headers = user_with_role(app, "cliente", first_name="Ana", telefono="1")
    old = client.get("/api/perfil/", headers=headers)
    client.get("/api/perfil/", headers=headers)  # now cached

    response = client.patch(
        "/api/perfil/",
        json={"first_name": "Ana María", "telefono": "555-9999", "direccion": "Ave 1, Habana"},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["first_name"] == "Ana María"
    assert response.json["rol"] == "cliente"

    fresh = client.get("/api/perfil/", headers={**headers, "If-None-Match": old.headers["ETag"]})
    assert fresh.status_code == 200
    assert fresh.json["first_name"] == "Ana María"
    assert fresh.json["telefono"] == "555-9999"
    assert fresh.json["direccion"] == "Ave 1, Habana"
    assert fresh.headers["ETag"] != old.headers["ETag"]
    assert snapshot(app, uid)["telefono"] == "555-9999"


def test_perfil_fresh_through_a_second_app_instance(make_app):
    app1, app2 = make_app(), make_app()
    _, headers = user_with_role(app1, "cliente", first_name="Antes")
    c1, c2 = app1.test_client(), app2.test_client()
    assert c2.get("/api/perfil/", headers=headers).json["first_name"] == "Antes"
    assert c2.get("/api/perfil/", headers=headers).headers["X-Cache"] == "HIT"

    assert (
        c1.patch("/api/perfil/", json={"first_name": "Después"}, headers=headers).status_code == 200
    )
    assert c2.get("/api/perfil/", headers=headers).json["first_name"] == "Después"


def test_perfil_staff_edit_is_fresh_for_the_owner(make_app):
    app1, app2 = make_app(), make_app()
    _, admin = user_with_role(app1, "admin")
    uid, headers = user_with_role(app1, "cliente", last_name="Viejo")
    c2 = app2.test_client()
    assert c2.get("/api/perfil/", headers=headers).json["last_name"] == "Viejo"
    app1.test_client().patch(f"/api/admin/users/{uid}/", json={"last_name": "Nuevo"}, headers=admin)
    assert c2.get("/api/perfil/", headers=headers).json["last_name"] == "Nuevo"


@pytest.mark.parametrize(
    "body",
    [
        {"rol": "admin"},
        {"is_active": False},
        {"username": "otro"},
        {"email": "otro@example.test"},
        {"telefono": "9" * 31},
        {"direccion": None},
        {"first_name": ["a"]},
        {"first_name": "Ok", "extra": True},
    ],
)
def test_perfil_validation_writes_nothing(app, client, body):
    uid, headers = user_with_role(app, "cliente", first_name="Igual")
    before = snapshot(app, uid)
    response = client.patch("/api/perfil/", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json["errors"]
    assert snapshot(app, uid) == before


def test_perfil_patch_refuses_non_json(app, client):
    uid, headers = user_with_role(app, "cliente", first_name="Igual")
    before = snapshot(app, uid)
    response = client.patch(
        "/api/perfil/", data="first_name=X", headers={**headers, "Content-Type": "text/plain"}
    )
    assert response.status_code in (400, 415)
    assert response.is_json
    assert snapshot(app, uid) == before


def test_token_of_deleted_usuario_is_401(app, client):
    uid, headers = user_with_role(app, "cliente")
    with app.app_context():
        _db.session.delete(_db.session.get(Usuario, uid))
        _db.session.commit()
    assert client.get("/api/perfil/", headers=headers).status_code == 401


def test_auth_headers_helper_roundtrip(app, client):
    uid = make_usuario(app, rol="mensajero")
    assert client.get("/api/perfil/", headers=auth_headers(app, uid)).json["id"] == uid


def test_openapi_documents_the_usuario_endpoints(client):
    paths = client.get("/api/openapi.json").json["paths"]
    expected = {
        ("/api/admin/users/", "get"): {"200", "401", "403", "422"},
        ("/api/admin/users/{usuario_id}/", "patch"): {"200", "401", "403", "404", "422"},
        ("/api/perfil/", "get"): {"200", "304", "401"},
        ("/api/perfil/", "patch"): {"200", "401", "422"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert statuses <= set(operation["responses"])
        assert operation["security"] == [{"bearerAuth": []}]
