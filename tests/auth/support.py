"""Helpers for the auth tests: log in through the API, read rows back."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from electro_isla.auth.models import RefreshToken
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import PASSWORD, UsuarioFactory

COOKIE = "refreshToken"
WRONG_PASSWORD = "no-es-la-clave"
COOKIE_PATH = "/api/auth/"


def make_usuario(app: Flask, **fields: Any) -> int:
    with app.app_context():
        return UsuarioFactory(**fields).id


def login(client: FlaskClient, username: str, password: str = PASSWORD, ip: str = "10.0.0.1"):
    return client.post(
        "/api/auth/login/",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def failed_logins_through_two_apps(
    first: Flask, second: Flask, attempts: int, net: str
) -> list[int]:
    """A new usuario's wrong-password logins, alternating between two app instances (two
    workers), each from its own IP in `net` ("10.9.0."): only the shared limit can count them."""
    make_usuario(first, username="ana")
    clients = (second.test_client(), first.test_client())
    return [
        login(clients[n % 2], "ana", WRONG_PASSWORD, ip=f"{net}{n}").status_code
        for n in range(attempts)
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE, path=COOKIE_PATH)
    return cookie.value if cookie else None


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return _db.session.scalar(select(func.count()).select_from(model))


def refresh_rows(app: Flask, usuario_id: int) -> list[RefreshToken]:
    with app.app_context():
        rows = _db.session.scalars(
            select(RefreshToken).where(RefreshToken.usuario_id == usuario_id)
        ).all()
        _db.session.expunge_all()
        return list(rows)


def update_usuario(app: Flask, usuario_id: int, **fields: Any) -> None:
    """Commit a change through the ORM, as the admin endpoints would."""
    with app.app_context():
        usuario = _db.session.get(Usuario, usuario_id)
        for name, value in fields.items():
            setattr(usuario, name, value)
        _db.session.commit()
