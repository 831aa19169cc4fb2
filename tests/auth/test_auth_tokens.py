"""Access tokens on every request: the 401 matrix, current role and is_active, revocation
shared by workers, and no SQL on a perfil_usuario cache hit."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from flask import Blueprint
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import event

from electro_isla.auth.permissions import admin_required, staff_required
from electro_isla.auth.tokens import revocation_keys
from electro_isla.cache import shared_redis
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from tests.auth.support import bearer, login, update_usuario
from tests.helpers import auth_headers, writes_settled

ENVELOPE = {"code", "status", "message"}


def add_probes(app) -> None:
    """Staff- and admin-only endpoints, independent of the other domains' views."""
    probes = Blueprint("auth_probes", __name__)

    @probes.get("/probe/staff/")
    @staff_required
    def staff_probe():
        return {"ok": True}

    @probes.get("/probe/admin/")
    @admin_required
    def admin_probe():
        return {"ok": True}

    app.register_blueprint(probes)


def assert_401(response) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert set(response.json) == ENVELOPE
    assert response.json["code"] == 401
    assert response.json["status"] == "Unauthorized"
    assert "msg" not in response.json


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def token(app, client, usuario_id) -> str:
    return login(client, "ana").json["accessToken"]


def test_valid_token_passes(client, token):
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YW5hOnNlY3JldG8="},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Bearer a b c"},
        {"Authorization": "Bearer ñandú"},
    ],
    ids=["none", "empty", "no-token", "basic", "garbage", "one-part", "spaces", "non-ascii"],
)
def test_missing_or_malformed_token_is_401(client, usuario_id, headers):
    assert_401(client.get("/api/auth/me/", headers=headers))


def test_expired_token_is_401(client, token):
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=15, seconds=1)):
        assert_401(client.get("/api/auth/me/", headers=bearer(token)))
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=14, seconds=50)):
        assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200


def test_tampered_token_is_401(client, token, usuario_id):
    header, payload, signature = token.split(".")
    claims = pyjwt.decode(token, options={"verify_signature": False})
    escalated = f"{header}.{b64({**claims, 'rol': 'admin', 'sub': '999'})}.{signature}"
    assert_401(client.get("/api/auth/me/", headers=bearer(escalated)))
    # A middle character: every one of its bits is significant (the last one's are not).
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert_401(client.get("/api/auth/me/", headers=bearer(f"{header}.{payload}.{flipped}")))
    other_key = pyjwt.encode(claims, "another-secret-key-of-enough-length-0123", algorithm="HS256")
    assert_401(client.get("/api/auth/me/", headers=bearer(other_key)))
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    assert_401(client.get("/api/auth/me/", headers=bearer(unsigned)))


def test_validly_signed_tokens_with_a_bad_subject_or_type_are_401(app, client, usuario_id):
    with app.app_context():
        tokens = [
            create_access_token(identity="abc"),
            create_access_token(identity="999999"),
            create_refresh_token(identity=str(usuario_id)),  # a JWT refresh is not an access
        ]
    for token in tokens:
        assert_401(client.get("/api/auth/me/", headers=bearer(token)))


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "99999999999999999999"},  # past any id: the lookup was a 500
        {"sub": "2147483648"},
        {"sub": "0"},
        {"sub": "\u0663"},  # an Arabic-Indic 3: int() reads it, no token of ours holds it
        {"sub": " {uid}"},
        {"exp": None},  # no expiry: it was good for ever
        {"exp": "4102444800"},
    ],
    ids=["huge", "past-int", "zero", "arabic-digit", "space", "no-exp", "exp-string"],
)
def test_a_token_signed_with_the_key_but_not_as_ours_is_401(app, client, token, usuario_id, change):
    """What the app signs always has an expiry and a usuario id: anything else, even
    signed with the key (by hand, a leaked key's forgery, a bug elsewhere), is refused."""
    claims = pyjwt.decode(token, options={"verify_signature": False})
    change = {k: v.format(uid=usuario_id) if isinstance(v, str) else v for k, v in change.items()}
    claims = {k: v for k, v in {**claims, **change}.items() if v is not None}
    forged = pyjwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    assert_401(client.get("/api/auth/me/", headers=bearer(forged)))
    # The same claims as the app writes them pass: the change is what is refused.
    intact = pyjwt.decode(token, options={"verify_signature": False})
    resigned = pyjwt.encode(intact, app.config["SECRET_KEY"], algorithm="HS256")
    assert client.get("/api/auth/me/", headers=bearer(resigned)).status_code == 200


def test_token_of_a_deleted_user_is_401(app, client, token, usuario_id):
    with app.app_context():
        _db.session.delete(_db.session.get(Usuario, usuario_id))
        _db.session.commit()
    assert_401(client.get("/api/auth/me/", headers=bearer(token)))


def test_revoked_token_is_401_and_other_sessions_survive(client, app, token, usuario_id):
    second = login(app.test_client(), "ana").json["accessToken"]
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    assert_401(client.get("/api/auth/me/", headers=bearer(token)))
    # Logout revokes that access token only; another device's stays valid until it expires.
    assert client.get("/api/auth/me/", headers=bearer(second)).status_code == 200


def test_deactivated_user_loses_access_on_the_next_request(app, client, token, usuario_id):
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200  # cached now
    update_usuario(app, usuario_id, is_active=False)
    assert_401(client.get("/api/auth/me/", headers=bearer(token)))


def test_demoted_staff_gets_403_on_the_next_request(make_app):
    app = make_app()
    add_probes(app)
    other_worker = make_app()
    add_probes(other_worker)
    with app.app_context():
        from electro_isla_testing.factories import UsuarioFactory

        uid = UsuarioFactory(rol="admin").id
    headers = auth_headers(app, uid)
    client, other = app.test_client(), other_worker.test_client()
    for c in (client, other):  # both workers have the admin perfil cached
        assert c.get("/probe/admin/", headers=headers).status_code == 200
        assert c.get("/probe/staff/", headers=headers).status_code == 200

    update_usuario(app, uid, rol="trabajador")
    for c in (client, other):
        assert c.get("/probe/admin/", headers=headers).status_code == 403
        assert c.get("/probe/staff/", headers=headers).status_code == 200

    update_usuario(app, uid, rol="cliente")
    for c in (client, other):
        response = c.get("/probe/staff/", headers=headers)
        assert response.status_code == 403
        assert response.json["code"] == 403 and set(response.json) == ENVELOPE
        # The token still claims "admin"; the current data decides.
        assert c.get("/api/auth/me/", headers=headers).json["rol"] == "cliente"


def test_logout_is_seen_by_every_worker_through_redis(make_app):
    app, other_worker = make_app(), make_app()
    with app.app_context():
        from electro_isla_testing.factories import UsuarioFactory

        UsuarioFactory(username="ana")
    client, other = app.test_client(), other_worker.test_client()
    token = login(client, "ana").json["accessToken"]
    assert other.get("/api/auth/me/", headers=bearer(token)).status_code == 200

    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    assert_401(other.get("/api/auth/me/", headers=bearer(token)))

    prefix = app.config["CACHE_KEY_PREFIX"]
    # A logged-in token's entries: its login's and its jti (auth/tokens.py: revocation_keys).
    entry, jti = revocation_keys(pyjwt.decode(token, options={"verify_signature": False}))
    assert entry.startswith("fam:")
    assert 0 < shared_redis(app).zscore(f"{prefix}:auth:revoked", entry) - time.time() <= 16 * 60
    redis = shared_redis(app)
    key = f"{prefix}:auth:revoked"  # one set: jti or login -> expiry, complete or absent
    assert 0 < redis.zscore(key, jti) - time.time() <= 15 * 60
    # It has a TTL outliving its members, so `volatile-lru` may evict it (whole).
    assert 15 * 60 <= redis.ttl(key) <= 16 * 60
    redis.delete(key)  # evicted: reloaded from the table, with its TTL again
    assert_401(other.get("/api/auth/me/", headers=bearer(token)))
    assert redis.zscore(key, jti) is not None and 15 * 60 <= redis.ttl(key) <= 16 * 60
    # The revocation is not a cache entry: clearing the cache keeps it.
    with app.app_context():
        from electro_isla.cache import cache_manager

        cache_manager.clear_all()
    assert redis.zscore(key, jti) is not None
    assert_401(other.get("/api/auth/me/", headers=bearer(token)))


def test_authenticated_request_costs_no_sql_on_a_perfil_cache_hit(app, client, token):
    with app.app_context():
        engine = _db.engine
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        # First request after login: perfil_usuario is cold, so it reads the usuario.
        assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200
        assert any("usuarios" in s for s in statements), statements
        statements.clear()
        for _ in range(3):
            response = client.get("/api/auth/me/", headers=bearer(token))
            assert response.status_code == 200
        assert statements == []
        # A write to the usuario makes the next request read it again, once.
        update_usuario(app, response.json["id"], first_name="Otra")
        writes_settled(app)
        statements.clear()
        assert client.get("/api/auth/me/", headers=bearer(token)).json["nombre"].startswith("Otra")
        assert len(statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
