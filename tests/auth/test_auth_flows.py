"""/api/auth/ success paths, validation, refresh rotation and reuse detection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from sqlalchemy import text

from electro_isla.auth.models import RefreshToken
from electro_isla.config import TestConfig
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from tests.auth.support import (
    COOKIE,
    COOKIE_PATH,
    bearer,
    count,
    login,
    make_usuario,
    refresh_cookie,
    refresh_rows,
    update_usuario,
)
from tests.helpers import auth_headers, error_keys

SECRET = TestConfig.SECRET_KEY


# -- register ---------------------------------------------------------------------


def test_register_creates_a_cliente_whatever_rol_is_sent(app, client):
    body = {
        "username": "nuevo",
        "email": "Nuevo@Example.TEST",
        "password": "12345678",
        "first_name": "Nu",
        "last_name": "Evo",
        "rol": "admin",
        "is_active": False,
    }
    response = client.post("/api/auth/register/", json=body)
    assert response.status_code == 201, response.json
    user = response.json["user"]
    assert user["username"] == "nuevo"
    assert user["email"] == "nuevo@example.test"
    assert user["rol"] == "cliente"
    assert user["nombre"] == "Nu Evo"
    assert user["is_active"] is True
    assert "password" not in user and "password_hash" not in user
    # The contract's Usuario, as the profile shows it (it lacked telefono and direccion).
    perfil = client.get("/api/perfil/", headers=auth_headers(app, user["id"])).json
    assert set(user) == set(perfil) and user["telefono"] == user["direccion"] == ""
    with app.app_context():
        usuario = _db.session.get(Usuario, user["id"])
        assert usuario.rol == "cliente"
        assert usuario.password_hash != "12345678"
        assert usuario.check_password("12345678")
    # The new account can log in right away, by email in any case.
    assert login(client, "NUEVO@example.test", "12345678").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ana", "email": "otra@example.test", "password": "12345678"},
        {"username": "otra", "email": "ana@example.test", "password": "12345678"},
        {"username": "otra", "email": "ANA@Example.test", "password": "12345678"},
    ],
    ids=["username", "email", "email-case"],
)
def test_register_duplicate_is_409_and_writes_nothing(app, client, usuario_id, body):
    response = client.post("/api/auth/register/", json=body)
    assert response.status_code == 409
    assert response.json["code"] == 409 and response.json["message"]
    assert count(app, Usuario) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x", "email": "x@example.test", "password": "1234567"},  # 7 chars
        {"username": "x", "email": "not-an-email", "password": "12345678"},
        {"email": "x@example.test", "password": "12345678"},
        {"username": "x", "password": "12345678"},
        {"username": "x", "email": "x@example.test"},
        {"username": "", "email": "x@example.test", "password": "12345678"},
        {"username": "a@b", "email": "x@example.test", "password": "12345678"},
        {"username": "x" * 151, "email": "x@example.test", "password": "12345678"},
        {"username": 5, "email": "x@example.test", "password": "12345678"},
        {"username": "x\n", "email": "x@example.test", "password": "12345678"},
        {"username": "x", "email": "x@example.test", "password": " " * 8},  # was a 201
        {"username": "x", "email": "x@example.test", "password": "\t\n" * 5},
        {"username": "x", "email": "x@example.test", "password": "12345678", "last_name": "a\x00"},
        {
            "username": "x",
            "email": "x@example.test",
            "password": "12345678",
            "first_name": "f" * 151,
        },
    ],
)
def test_register_validation_is_422_and_writes_nothing(app, client, body):
    response = client.post("/api/auth/register/", json=body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    assert response.json["errors"]
    assert count(app, Usuario) == 0


@pytest.mark.parametrize("path", ["/api/auth/register/", "/api/auth/login/"])
def test_malformed_json_is_400_and_writes_nothing(app, client, path):
    response = client.post(path, data='{"username": "x",', content_type="application/json")
    assert response.status_code == 400
    assert response.json["code"] == 400
    assert count(app, Usuario) == 0
    assert count(app, RefreshToken) == 0


# -- login ------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["ana", "ana@example.test"])
def test_login_by_username_or_email(app, client, usuario_id, identifier):
    response = login(client, identifier)
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"accessToken", "user", "message"}
    assert body["user"] == {
        "id": usuario_id,
        "username": "ana",
        "email": "ana@example.test",
        "nombre": body["user"]["nombre"],
        "rol": "cliente",
    }
    assert body["user"]["nombre"]

    claims = pyjwt.decode(body["accessToken"], SECRET, algorithms=["HS256"])
    assert pyjwt.get_unverified_header(body["accessToken"])["alg"] == "HS256"
    assert claims["sub"] == str(usuario_id)
    assert claims["username"] == "ana"
    assert claims["email"] == "ana@example.test"
    assert claims["rol"] == "cliente"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 15 * 60

    set_cookie = response.headers.get("Set-Cookie")
    assert set_cookie.startswith(f"{COOKIE}=")
    attributes = {part.strip().lower() for part in set_cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert f"path={COOKIE_PATH}" in attributes
    assert "max-age=7200" in attributes
    rows = refresh_rows(app, usuario_id)
    assert len(rows) == 1
    raw = refresh_cookie(client)
    assert raw and rows[0].token_hash != raw and len(rows[0].token_hash) == 64
    assert rows[0].expires_at - rows[0].created_at == timedelta(hours=2)


def test_bad_credentials_same_answer_whether_or_not_the_user_exists(app, client, usuario_id):
    wrong_password = login(client, "ana", "no-es-la-clave", ip="10.0.0.2")
    unknown_user = login(client, "nadie", "no-es-la-clave", ip="10.0.0.3")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json == unknown_user.json
    assert wrong_password.json["message"]
    assert "Set-Cookie" not in wrong_password.headers
    assert count(app, RefreshToken) == 0


def test_inactive_user_cannot_log_in(app, client):
    make_usuario(app, username="dormido", is_active=False)
    response = login(client, "dormido")
    assert response.status_code == 401
    assert response.json == login(client, "nadie", ip="10.0.0.9").json
    assert count(app, RefreshToken) == 0


def test_login_validation_is_422(app, client):
    response = client.post("/api/auth/login/", json={"username": "ana"})
    assert response.status_code == 422
    assert error_keys(response) == {"password"}
    # NUL cannot reach PostgreSQL (it would be a 500 there).
    response = client.post("/api/auth/login/", json={"username": "a\x00b", "password": "x"})
    assert response.status_code == 422


def test_me_returns_the_caller_from_current_data(app, client, usuario_id):
    token = login(client, "ana").json["accessToken"]
    update_usuario(app, usuario_id, first_name="Ana", last_name="Pérez", rol="mensajero")
    response = client.get("/api/auth/me/", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {
        "id": usuario_id,
        "username": "ana",
        "email": "ana@example.test",
        "nombre": "Ana Pérez",
        "rol": "mensajero",
    }


# -- refresh ----------------------------------------------------------------------


def test_refresh_rotates_the_cookie_and_issues_a_new_access_token(app, client, usuario_id):
    login(client, "ana")
    first = refresh_cookie(client)
    response = client.post("/api/auth/refresh/")
    assert response.status_code == 200, response.json
    assert set(response.json) == {"accessToken"}
    claims = pyjwt.decode(response.json["accessToken"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(usuario_id) and claims["type"] == "access"
    second = refresh_cookie(client)
    assert second and second != first
    assert "httponly" in response.headers["Set-Cookie"].lower()
    me = client.get("/api/auth/me/", headers=bearer(response.json["accessToken"]))
    assert me.status_code == 200
    rows = refresh_rows(app, usuario_id)
    # One family, rotated in place: the first member is spent, the second is live.
    assert [(row.sequence, row.revoked_at) for row in rows] == [(1, None)]
    # And the new one works in turn.
    assert client.post("/api/auth/refresh/").status_code == 200


def test_refresh_reuse_is_401_and_revokes_every_refresh_token(app, client, usuario_id):
    other = app.test_client()  # a second device with its own session
    login(other, "ana")
    login(client, "ana")
    stolen = refresh_cookie(client)
    assert client.post("/api/auth/refresh/").status_code == 200
    legit = refresh_cookie(client)

    client.set_cookie(COOKIE, stolen, path=COOKIE_PATH)
    reused = client.post("/api/auth/refresh/")
    assert reused.status_code == 401
    assert reused.json["code"] == 401

    assert all(row.revoked_at is not None for row in refresh_rows(app, usuario_id))
    client.set_cookie(COOKIE, legit, path=COOKIE_PATH)
    assert client.post("/api/auth/refresh/").status_code == 401
    assert other.post("/api/auth/refresh/").status_code == 401


@pytest.mark.parametrize("cookie", [None, "", "not-a-token", "x" * 3000])
def test_refresh_without_a_valid_cookie_is_401(app, client, usuario_id, cookie):
    if cookie is not None:
        client.set_cookie(COOKIE, cookie, path=COOKIE_PATH)
    response = client.post("/api/auth/refresh/")
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert count(app, RefreshToken) == 0
    if cookie is not None:  # a refused cookie is cleared, on the path it was set on
        assert refresh_cookie(client) is None
        assert f"path={COOKIE_PATH}" in response.headers["Set-Cookie"].lower()


def test_refresh_token_expires_after_two_hours(app, client, usuario_id):
    login(client, "ana")
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2, seconds=5)):
        assert client.post("/api/auth/refresh/").status_code == 401


def test_refresh_refused_once_the_user_is_deactivated(app, client, usuario_id):
    login(client, "ana")
    update_usuario(app, usuario_id, is_active=False)
    assert client.post("/api/auth/refresh/").status_code == 401
    assert all(row.revoked_at is not None for row in refresh_rows(app, usuario_id))


def test_refresh_access_token_carries_the_current_role(app, client, usuario_id):
    login(client, "ana")
    update_usuario(app, usuario_id, rol="trabajador")
    token = client.post("/api/auth/refresh/").json["accessToken"]
    assert pyjwt.decode(token, SECRET, algorithms=["HS256"])["rol"] == "trabajador"


# -- logout -----------------------------------------------------------------------


def test_logout_revokes_the_access_token_and_refresh_tokens_and_clears_the_cookie(
    app, client, usuario_id
):
    other = app.test_client()
    login(other, "ana")
    token = login(client, "ana").json["accessToken"]
    old_cookie = refresh_cookie(client)
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200

    response = client.post("/api/auth/logout/", headers=bearer(token))
    assert response.status_code == 200, response.json
    cleared = response.headers["Set-Cookie"].lower()
    assert cleared.startswith(f"{COOKIE.lower()}=;")
    assert f"path={COOKIE_PATH}" in cleared
    assert "max-age=0" in cleared
    assert refresh_cookie(client) is None

    again = client.get("/api/auth/me/", headers=bearer(token))
    assert again.status_code == 401
    assert again.json["code"] == 401 and again.json["status"] == "Unauthorized"
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 401
    client.set_cookie(COOKIE, old_cookie, path=COOKIE_PATH)
    assert client.post("/api/auth/refresh/").status_code == 401
    assert other.post("/api/auth/refresh/").status_code == 401
    assert all(row.revoked_at is not None for row in refresh_rows(app, usuario_id))
    # A fresh login works again.
    fresh = login(client, "ana").json["accessToken"]
    assert client.get("/api/auth/me/", headers=bearer(fresh)).status_code == 200


def test_logout_requires_a_token(app, client):
    response = client.post("/api/auth/logout/")
    assert response.status_code == 401
    assert set(response.json) == {"code", "status", "message"}


def test_embedded_default_without_redis(sqlite_app):
    """SQLite + in-process stores: the whole cycle works without any server."""
    client = sqlite_app.test_client()
    created = client.post(
        "/api/auth/register/",
        json={"username": "solo", "email": "solo@example.test", "password": "12345678"},
    )
    assert created.status_code == 201
    token = login(client, "solo", "12345678").json["accessToken"]
    assert client.post("/api/auth/refresh/").status_code == 200
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    for _ in range(5):
        assert login(client, "solo", "mala-clave").status_code == 401
    assert login(client, "solo", "12345678").status_code == 429


def test_concurrent_uses_of_one_refresh_token_let_exactly_one_through(app, usuario_id):
    """On PostgreSQL the spend is one conditional UPDATE: racing copies cannot both win,
    and the losers count as reuse, so the winner's new token is revoked too."""
    seed = app.test_client()
    login(seed, "ana")
    raw = refresh_cookie(seed)
    clients = []
    for _ in range(8):
        c = app.test_client()
        c.set_cookie(COOKIE, raw, path=COOKIE_PATH)
        clients.append(c)
    barrier = threading.Barrier(len(clients))

    def use(c):
        barrier.wait()
        return c.post("/api/auth/refresh/").status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(use, clients))
    assert statuses == [200] + [401] * (len(clients) - 1)
    rows = refresh_rows(app, usuario_id)
    assert len(rows) == 1  # one login, one family
    assert all(row.revoked_at is not None for row in rows)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login/", '{"username": "a\\ud800", "password": "x"}'),
        (
            "/api/auth/register/",
            '{"username": "x", "email": "x@example.test", '
            '"password": "12345678", "first_name": "\\udfff"}',
        ),
    ],
)
def test_text_postgresql_cannot_store_is_refused_not_a_500(app, client, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.json["code"] == response.status_code
    assert count(app, Usuario) == 0


@pytest.fixture(params=["postgresql", "sqlite"])
def either_app(request):
    """The app on PostgreSQL + Redis, and on the embedded default."""
    return request.getfixturevalue("app" if request.param == "postgresql" else "sqlite_app")


def register(client, username: str, email: str):
    body = {"username": username, "email": email, "password": "12345678"}
    return client.post("/api/auth/register/", json=body)


def test_a_username_beyond_ascii_logs_in_as_registered(either_app):
    """SQLite's lower() folds only ASCII: compared with Python's lower(), "Ñandu" was
    a 401 on the embedded default whatever the password."""
    client = either_app.test_client()
    assert register(client, "Ñandu", "nandu@example.test").status_code == 201
    response = client.post("/api/auth/login/", json={"username": "Ñandu", "password": "12345678"})
    assert response.status_code == 200, response.json
    assert response.json["user"]["username"] == "Ñandu"


def test_a_username_is_normalised_like_djangos_before_it_is_compared(either_app):
    """NFKC, as Django's normalize_username: the Kelvin sign is a K, taken already."""
    client = either_app.test_client()
    assert register(client, "K", "k@example.test").status_code == 201
    assert register(client, "\u212a", "kelvin@example.test").status_code == 409
    full_width = register(client, "\uff41na", "ana@example.test")  # full-width a
    assert (full_width.status_code, full_width.json["user"]["username"]) == (201, "ana")
    response = client.post(
        "/api/auth/login/", json={"username": "\uff41NA", "password": "12345678"}
    )
    assert (response.status_code, response.json["user"]["username"]) == (200, "ana")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("ñandu", "n@example.test"), ("Ñandu", "n@example.test")),  # same email
        (("οδοσ", "a@example.test"), ("ΟΔΟΣ", "b@example.test")),  # Python lowers Σ to ς
    ],
)
def test_a_duplicate_registration_names_the_field_the_database_found_taken(
    either_app, first, second
):
    """The clash is found with the database's lower(); the 409 named the field by
    Python's, which folds Ñ where SQLite (and PostgreSQL in the C locale) do not, and
    Σ otherwise than PostgreSQL does."""
    client = either_app.test_client()
    assert register(client, *first).status_code == 201
    with either_app.app_context():
        same_name = _db.session.scalar(
            text("SELECT lower(:a) = lower(:b)"), {"a": first[0], "b": second[0]}
        )
    response = register(client, *second)
    if same_name:
        assert (response.status_code, response.json["message"]) == (
            409,
            "A usuario with this username already exists.",
        )
    elif first[1] == second[1]:
        assert (response.status_code, response.json["message"]) == (
            409,
            "A usuario with this email already exists.",
        )
    else:
        assert response.status_code == 201
