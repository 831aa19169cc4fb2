"""Helpers shared by the catalogue and order tests."""

from __future__ import annotations

from flask import Flask

from tests.helpers import user_with_role

# Expected status per caller, in this order, for staff-only and admin-only endpoints.
CALLERS = ("anonymous", "cliente", "mensajero", "trabajador", "admin")
STAFF_MATRIX = dict(zip(CALLERS, (401, 403, 403, None, None), strict=True))
ADMIN_MATRIX = dict(zip(CALLERS, (401, 403, 403, 403, None), strict=True))


def quick_user(app: Flask, rol: str, **fields) -> tuple[int, dict[str, str]]:
    """A usuario with `rol` and bearer headers (the factory's password hash is cheap)."""
    return user_with_role(app, rol, **fields)


def headers_for(app: Flask, caller: str) -> dict[str, str]:
    return {} if caller == "anonymous" else quick_user(app, caller)[1]
