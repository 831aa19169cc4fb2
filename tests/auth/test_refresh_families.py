"""Refresh tokens are bounded: one row per login (a family rotated in place), expired rows purged."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import jwt as pyjwt

from electro_isla.auth import refresh
from electro_isla.auth.models import RefreshToken, RevokedToken
from electro_isla.db_types import utcnow
from electro_isla.extensions import db as _db
from tests.auth.support import (
    COOKIE,
    COOKIE_PATH,
    bearer,
    count,
    login,
    make_usuario,
    refresh_cookie,
    refresh_rows,
)


def test_a_thousand_refreshes_leave_one_row_per_login(app, client, usuario_id):
    other = app.test_client()
    login(client, "ana")
    login(other, "ana")
    assert count(app, RefreshToken) == 2
    for i in range(1000):
        assert client.post("/api/auth/refresh/").status_code == 200, i
    assert count(app, RefreshToken) == 2
    rows = refresh_rows(app, usuario_id)
    assert sorted(row.sequence for row in rows) == [0, 1000]
    assert other.post("/api/auth/refresh/").status_code == 200


def test_an_older_member_of_the_family_is_reuse_and_revokes_every_refresh_token(
    app, client, usuario_id
):
    other = app.test_client()
    login(other, "ana")
    login(client, "ana")
    members = [refresh_cookie(client)]
    for _ in range(4):
        assert client.post("/api/auth/refresh/").status_code == 200
        members.append(refresh_cookie(client))
    thief = app.test_client()
    thief.set_cookie(COOKIE, members[2], path=COOKIE_PATH)
    assert thief.post("/api/auth/refresh/").status_code == 401
    assert all(row.revoked_at is not None for row in refresh_rows(app, usuario_id))
    assert client.post("/api/auth/refresh/").status_code == 401  # the live member too
    assert other.post("/api/auth/refresh/").status_code == 401  # and the other login


def test_a_forged_member_of_a_live_family_is_refused_without_revoking(app, client, usuario_id):
    login(client, "ana")
    family = refresh_cookie(client).split(".")[0]
    for forged in (f"{family}.0.nope", f"{family}.7.nope", "sin-puntos", f"{family}.x.y"):
        thief = app.test_client()
        thief.set_cookie(COOKIE, forged, path=COOKIE_PATH)
        assert thief.post("/api/auth/refresh/").status_code == 401, forged
    # Digits Python's isdigit() takes and int() refuses (bytes 0xB2, 0xB9 read as latin-1)
    # were a 500 with a traceback in the log, for anyone.
    for odd in (f"{family}.\u00b2.y", "a" * 32 + ".\u00b9.x", f"{family}.\u0663.y"):
        response = app.test_client(use_cookies=False).post(
            "/api/auth/refresh/", headers={"Cookie": f"{COOKIE}={odd}"}
        )
        assert response.status_code == 401, (odd, response.status_code)
    # sequence 0 is the current member's: a wrong secret with it is no proof of a copy.
    assert all(row.revoked_at is None for row in refresh_rows(app, usuario_id))
    assert client.post("/api/auth/refresh/").status_code == 200


def test_expired_families_are_purged_in_bounded_batches(app, client, usuario_id):
    someone = make_usuario(app, username="otra")  # not ana: her own logins are capped apart
    old = utcnow() - timedelta(hours=3)
    with app.app_context():
        for i in range(refresh.PURGE_BATCH + 30):
            _db.session.add(
                RefreshToken(
                    usuario_id=someone,
                    family=f"{i:032x}",
                    token_hash=hashlib.sha256(str(i).encode()).hexdigest(),
                    created_at=old,
                    expires_at=old + timedelta(hours=2),
                )
            )
        _db.session.commit()
    login(client, "ana")  # purges one batch, adds its own family
    assert count(app, RefreshToken) == 30 + 1
    assert client.post("/api/auth/refresh/").status_code == 200  # and the rest
    assert count(app, RefreshToken) == 1


def test_a_usuario_keeps_a_bounded_number_of_logins(app, usuario_id):
    clients = [app.test_client() for _ in range(refresh.REFRESH_FAMILIES_PER_USUARIO + 5)]
    for c in clients:
        assert login(c, "ana").status_code == 200
    assert count(app, RefreshToken) == refresh.REFRESH_FAMILIES_PER_USUARIO
    assert clients[0].post("/api/auth/refresh/").status_code == 401  # the oldest login
    assert clients[-1].post("/api/auth/refresh/").status_code == 200


def test_a_token_issued_before_families_still_works_once(app, client, usuario_id):
    """The migration keeps live pre-family rows; their plain tokens rotate into the family."""
    legacy = "legacy-token-without-dots"
    with app.app_context():
        now = utcnow()
        _db.session.add(
            RefreshToken(
                usuario_id=usuario_id,
                family=uuid.uuid4().hex,
                token_hash=hashlib.sha256(legacy.encode()).hexdigest(),
                created_at=now,
                expires_at=now + timedelta(hours=2),
            )
        )
        _db.session.commit()
    client.set_cookie(COOKIE, legacy, path=COOKIE_PATH)
    assert client.post("/api/auth/refresh/").status_code == 200
    assert client.post("/api/auth/refresh/").status_code == 200
    assert [row.sequence for row in refresh_rows(app, usuario_id)] == [2]


def test_a_second_use_of_a_new_login_is_reuse(app, client, usuario_id):
    login(client, "ana")
    first = refresh_cookie(client)
    assert client.post("/api/auth/refresh/").status_code == 200
    again = app.test_client()
    again.set_cookie(COOKIE, first, path=COOKIE_PATH)
    assert again.post("/api/auth/refresh/").status_code == 401
    assert all(row.revoked_at is not None for row in refresh_rows(app, usuario_id))


def test_a_logout_revokes_its_login_in_one_row_however_often_it_refreshed(app, client, usuario_id):
    """A security probe refreshed 300 times and logged out with each access token: 301 rows
    in revoked_tokens and members in Redis, from one usuario's login. A logout now revokes
    the login (the refresh family every one of its access tokens names)."""
    other = app.test_client()
    elsewhere = login(other, "ana").json["accessToken"]
    tokens = [login(client, "ana").json["accessToken"]]
    for _ in range(5):
        tokens.append(client.post("/api/auth/refresh/").json["accessToken"])
    assert client.post("/api/auth/logout/", headers=bearer(tokens[2])).status_code == 200
    for token in tokens:
        assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401
        assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 401
    assert count(app, RevokedToken) == 2  # the login, and the jti of the token used
    # Another login's access token is not this one: it lives out its 15 minutes, as the
    # contract says (that login's refresh token died with the logout).
    assert other.get("/api/auth/me/", headers=bearer(elsewhere)).status_code == 200
    assert other.post("/api/auth/refresh/").status_code == 401


def test_an_access_tokens_login_claim_is_no_refresh_cookie(app, client, usuario_id):
    """A reviewer took the first version's claim (the refresh family itself) from an
    access token, sent it as `<family>.0.x` and every refresh token of the usuario was
    revoked as reused, again at each new login. The claim is a digest now."""
    token = login(client, "ana").json["accessToken"]
    claim = pyjwt.decode(token, options={"verify_signature": False})["fam"]
    assert claim != refresh_cookie(client).split(".")[0]
    thief = app.test_client(use_cookies=False)
    forged = thief.post("/api/auth/refresh/", headers={"Cookie": f"{COOKIE}={claim}.0.x"})
    assert forged.status_code == 401
    assert all(row.revoked_at is None for row in refresh_rows(app, usuario_id))
    assert client.post("/api/auth/refresh/").status_code == 200


def test_a_logout_by_a_host_that_writes_jtis_only_is_seen(app, client, usuario_id):
    """A rolling deploy: a host of the version before the login entry revokes the jti
    alone; this version reads both entries, so the token stops here too."""
    token = login(client, "ana").json["accessToken"]
    payload = pyjwt.decode(token, options={"verify_signature": False})
    with app.app_context():
        _db.session.add(
            RevokedToken(jti=payload["jti"], expires_at=utcnow() + timedelta(minutes=15))
        )
        _db.session.commit()
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401
