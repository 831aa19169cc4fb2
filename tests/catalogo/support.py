"""Helpers shared by the catalogue and order tests."""

from __future__ import annotations

import itertools

from flask import Flask

from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario
from tests.helpers import auth_headers

_seq = itertools.count()

# Expected status per caller, in this order, for staff-only and admin-only endpoints.
CALLERS = ("anonymous", "cliente", "mensajero", "trabajador", "admin")
STAFF_MATRIX = dict(zip(CALLERS, (401, 403, 403, None, None), strict=True))
ADMIN_MATRIX = dict(zip(CALLERS, (401, 403, 403, 403, None), strict=True))


def quick_user(app: Flask, rol: str, **fields) -> tuple[int, dict[str, str]]:
    """A usuario with `rol` and bearer headers, without hashing a password.

    These tests authenticate with tokens only, and a real password hash costs
    about 0.4 s, most of a test's time.
    """
    n = next(_seq)
    with app.app_context():
        usuario = Usuario(
            username=f"{rol}_{n}",
            email=f"{rol}_{n}@example.test",
            password_hash="!unusable",
            rol=rol,
            **fields,
        )
        db.session.add(usuario)
        db.session.commit()
        uid = usuario.id
    return uid, auth_headers(app, uid)


def headers_for(app: Flask, caller: str) -> dict[str, str]:
    return {} if caller == "anonymous" else quick_user(app, caller)[1]
