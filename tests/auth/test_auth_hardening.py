"""Issue 11, findings 4 and 5 and the case rule: logout cannot lose a race with an
in-flight refresh, revocations survive a Redis outage, one account per name in any case."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from electro_isla.auth import models as auth_models
from electro_isla.db_types import utcnow
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import PASSWORD, UsuarioFactory
from tests.auth.support import (
    COOKIE,
    COOKIE_PATH,
    bearer,
    login,
    make_usuario,
    refresh_cookie,
    refresh_rows,
)

RESET = 0.3
OUTAGE = {"CACHE_CIRCUIT_RESET_SECONDS": RESET, "REDIS_SOCKET_TIMEOUT": 0.25}


# -- 4: rotate / logout serialised per usuario -------------------------------------


def lock_waiters(app) -> int:
    """Backends of this database waiting on a row lock right now."""
    with app.app_context(), _db.engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def test_logout_during_a_refresh_paused_before_commit_kills_the_rotated_token(app, usuario_id):
    seed = app.test_client()
    access = login(seed, "ana").json["accessToken"]
    refresher = app.test_client()
    refresher.set_cookie(COOKIE, refresh_cookie(seed), path=COOKIE_PATH)

    inserted, resume = threading.Event(), threading.Event()

    def pause_after_rotation(_conn, _cursor, statement: str, *_args) -> None:
        # The refresh's next member is written (the family's row UPDATEd) but not committed.
        if threading.current_thread().name == "refresh" and statement.startswith(
            "UPDATE refresh_tokens SET sequence"
        ):
            inserted.set()
            resume.wait(10)

    results: dict[str, object] = {}

    def refresh() -> None:
        results["refresh"] = refresher.post("/api/auth/refresh/").status_code

    def logout() -> None:
        results["logout"] = seed.post("/api/auth/logout/", headers=bearer(access)).status_code

    with app.app_context():
        engine = _db.engine
    event.listen(engine, "after_cursor_execute", pause_after_rotation)
    try:
        refreshing = threading.Thread(target=refresh, name="refresh")
        refreshing.start()
        assert inserted.wait(10), "the refresh never reached its UPDATE"
        logging_out = threading.Thread(target=logout, name="logout")
        logging_out.start()
        # Logout must now wait for the refresh's lock on the usuario row.
        deadline = time.monotonic() + 5
        while logging_out.is_alive() and not lock_waiters(app) and time.monotonic() < deadline:
            time.sleep(0.02)
        results["logout_waited"] = logging_out.is_alive()
        resume.set()
        refreshing.join(10)
        logging_out.join(10)
    finally:
        resume.set()
        event.remove(engine, "after_cursor_execute", pause_after_rotation)

    assert results["refresh"] == 200 and results["logout"] == 200, results
    assert results["logout_waited"], "logout did not wait for the in-flight refresh"
    # The token the refresh handed out was revoked by the logout that followed it.
    assert refresher.post("/api/auth/refresh/").status_code == 401
    rows = refresh_rows(app, usuario_id)
    assert len(rows) == 1 and rows[0].sequence == 1 and rows[0].revoked_at is not None


# -- 5: revocations answered from the database while Redis is out -------------------


def test_revocations_hold_on_every_worker_while_redis_is_down(make_app, own_redis):
    settings = {"REDIS_URL": own_redis.url, **OUTAGE}
    a, b = make_app(**settings), make_app(**settings)
    make_usuario(a, username="ana")
    one, two = a.test_client(), b.test_client()
    token = login(one, "ana").json["accessToken"]
    assert two.get("/api/auth/me/", headers=bearer(token)).status_code == 200
    assert one.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    assert two.get("/api/auth/me/", headers=bearer(token)).status_code == 401  # via Redis

    own_redis.kill()
    # Worker b never saw the logout itself, and Redis cannot answer: the database does,
    # first when the Redis command fails...
    assert two.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    with b.app_context():
        from electro_isla.cache import cache_manager

        assert cache_manager.breaker.is_open
    # ...then while the breaker is open (Redis not even tried)...
    assert two.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    # ...and when the next probe fails again.
    time.sleep(RESET + 0.1)
    assert two.get("/api/auth/me/", headers=bearer(token)).status_code == 401

    # A logout made during the outage, through b, is refused by a too.
    fresh = login(two, "ana", ip="10.20.0.1").json["accessToken"]
    assert one.get("/api/auth/me/", headers=bearer(fresh)).status_code == 200
    assert two.post("/api/auth/logout/", headers=bearer(fresh)).status_code == 200
    assert one.get("/api/auth/me/", headers=bearer(fresh)).status_code == 401
    # A token nobody logged out still works on both.
    live = login(one, "ana", ip="10.20.0.2").json["accessToken"]
    assert two.get("/api/auth/me/", headers=bearer(live)).status_code == 200


def test_a_restarted_worker_without_redis_still_refuses_logged_out_tokens(make_app):
    first = make_app(REDIS_URL=None)
    make_usuario(first, username="ana")
    client = first.test_client()
    token = login(client, "ana").json["accessToken"]
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    restarted = make_app(REDIS_URL=None).test_client()
    assert restarted.get("/api/auth/me/", headers=bearer(token)).status_code == 401


def test_revocations_expire_with_the_token_and_are_purged_in_bounded_batches(app, usuario_id):
    RevokedToken = auth_models.RevokedToken  # noqa: N806
    client = app.test_client()
    with app.app_context():
        past = utcnow() - timedelta(minutes=1)
        _db.session.add_all(RevokedToken(jti=f"old{n}", expires_at=past) for n in range(150))
        _db.session.commit()
    token = login(client, "ana").json["accessToken"]
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    with app.app_context():
        left = _db.session.scalar(select(func.count()).select_from(RevokedToken))
        live = _db.session.scalar(
            select(func.count()).select_from(RevokedToken).where(RevokedToken.expires_at > utcnow())
        )
    assert (left, live) == (52, 2)  # 100 expired purged, the login's and the jti's kept
    token = login(client, "ana").json["accessToken"]
    client.post("/api/auth/logout/", headers=bearer(token))
    with app.app_context():
        assert _db.session.scalar(select(func.count()).select_from(RevokedToken)) == 4


# -- one case rule for usernames and emails ------------------------------------------


def test_register_refuses_a_name_or_email_that_differs_only_in_case(app, client, usuario_id):
    body = {"password": "12345678", "first_name": "", "last_name": ""}
    clash = client.post(
        "/api/auth/register/", json={**body, "username": "ANA", "email": "otra@example.test"}
    )
    assert clash.status_code == 409 and "username" in clash.json["message"]
    clash = client.post(
        "/api/auth/register/", json={**body, "username": "otra", "email": "Ana@Example.TEST"}
    )
    assert clash.status_code == 409 and "email" in clash.json["message"]
    created = client.post(
        "/api/auth/register/", json={**body, "username": "Beto", "email": "Beto@Example.TEST"}
    )
    assert created.status_code == 201
    assert created.json["user"]["username"] == "Beto"  # as typed
    assert created.json["user"]["email"] == "beto@example.test"  # lower-cased


def test_every_write_path_stores_one_case_and_the_database_enforces_it(app, runner):
    result = runner.invoke(
        args=["create-user", "Carla", "--email", "Carla@Example.TEST", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=["create-user", "carla", "--email", "c2@example.test", "--password", PASSWORD]
    )
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(
        args=["create-user", "x@y", "--email", "x@example.test", "--password", PASSWORD]
    )
    assert result.exit_code == 2
    with app.app_context():
        assert _db.session.scalar(select(Usuario.email).where(Usuario.username == "Carla")) == (
            "carla@example.test"
        )
        # Below the application too: the unique indexes on lower().
        for fields in ({"username": "CARLA"}, {"email": "CARLA@example.test"}):
            with pytest.raises(IntegrityError):
                UsuarioFactory(**fields)
            _db.session.rollback()


def test_login_by_a_mixed_case_email_finds_exactly_that_usuario(app, client, runner):
    runner.invoke(
        args=["create-user", "dora", "--email", "Dora@Example.TEST", "--password", PASSWORD]
    )
    other = make_usuario(app, username="dora2", email="dora2@example.test")
    for identifier in ("DORA@example.test", "dora@EXAMPLE.test", "Dora", "dora"):
        response = login(client, identifier)
        assert response.status_code == 200, (identifier, response.json)
        assert response.json["user"]["username"] == "dora"
        assert response.json["user"]["id"] != other


# -- 8: the per-request check has its own short-lived cache entry --------------------


def deactivate_behind_the_apps_back(app, usuario_id: int) -> None:
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(text("UPDATE usuarios SET is_active = false WHERE id = :u"), {"u": usuario_id})


def test_a_raw_sql_deactivation_takes_effect_within_the_short_ttl(make_app, monkeypatch):
    monkeypatch.setenv("CACHE_TTL_ACCESO_USUARIO", "1")  # CACHE_TTL_<NAME>, as documented
    app = make_app()
    uid = make_usuario(app, username="ana")
    client = app.test_client()
    token = login(client, "ana").json["accessToken"]
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200
    deactivate_behind_the_apps_back(app, uid)
    time.sleep(1.5)
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401


def test_the_check_lives_sixty_seconds_by_default_and_app_writes_apply_at_once(app, usuario_id):
    client = app.test_client()
    token = login(client, "ana").json["accessToken"]
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 200
    with app.app_context():
        from electro_isla.cache import cache_manager, shared_redis

        assert cache_manager.ttls["acceso_usuario"] == 60
        assert cache_manager.ttls["perfil_usuario"] == 3600  # the profile keeps its hour
        key = cache_manager.key_for("acceso_usuario", row=usuario_id)
        assert 0 < shared_redis(app).ttl(key) <= 60
    # A write through the ORM invalidates the entry: refused on the very next request.
    with app.app_context():
        _db.session.get(Usuario, usuario_id).is_active = False
        _db.session.commit()
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401


# -- QA probe: a NUL in a password --------------------------------------------------
# PBKDF2/scrypt take the password as an HMAC key, zero-padded to the block size:
# "abcdefgh\x00" and "abcdefgh" hash alike, so registering the first let the second in.


def test_register_refuses_a_nul_in_the_password(app, client):
    body = {"username": "nul", "email": "nul@example.test", "password": "abcdefgh\x00"}
    response = client.post("/api/auth/register/", json=body)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"password"}
    with app.app_context():
        assert _db.session.scalar(select(func.count()).select_from(Usuario)) == 0
    assert login(client, "nul", "abcdefgh").status_code == 401


@pytest.mark.parametrize("password", ["abcdefgh\x00", "abcdefgh\x00\x00", "abcd\x00efgh"])
def test_login_with_a_nul_in_the_password_never_matches(app, client, password):
    body = {"username": "nul", "email": "nul@example.test", "password": "abcdefgh"}
    assert client.post("/api/auth/register/", json=body).status_code == 201
    response = login(client, "nul", password)
    assert response.status_code in (401, 422), response.get_json()
    assert "accessToken" not in response.get_json()
    with app.app_context():
        usuario = _db.session.scalar(select(Usuario).filter_by(username="nul"))
        assert usuario.check_password("abcdefgh")
        assert not usuario.check_password(password)
        with pytest.raises(ValueError, match="NUL"):
            usuario.set_password(password)
