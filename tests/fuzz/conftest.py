"""Fuzzing fixtures: one app per module on the run's PostgreSQL and Redis, with a user per role.

The scale comes from the environment: FUZZ_MAX_EXAMPLES (cases per operation and
role) and FUZZ_STATEFUL_EXAMPLES (stateful scenarios); `make fuzz` raises both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import text

from electro_isla import create_app
from electro_isla.auth.service import issue_access_token
from electro_isla.config import TestConfig
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import PedidoFactory, ProductoFactory, UsuarioFactory
from tests.conftest import unique_prefix

FUZZ_MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "3"))
FUZZ_STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "8"))
ROLES = ("admin", "trabajador", "mensajero", "cliente")
ANONYMOUS = "anonymous"


# Calls after which the role users may have lost their token or their role.
SPOILERS = ("/api/auth/logout/", "/api/admin/users/{usuario_id}/")


@dataclass
class FuzzEnv:
    app: Flask
    usuario_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, rol: str) -> dict[str, str]:
        """Bearer headers for `rol`; after a fuzzed logout or role change, restored and re-issued."""
        if rol == ANONYMOUS:
            return {}
        if rol not in self.tokens:
            with self.app.app_context():
                usuario = _db.session.get(Usuario, self.usuario_ids[rol])
                if usuario.rol != rol or not usuario.is_active:
                    usuario.rol, usuario.is_active = rol, True
                    _db.session.commit()
                self.tokens[rol] = issue_access_token(usuario)
                _db.session.remove()
        return {"Authorization": f"Bearer {self.tokens[rol]}"}

    def after(self, path: str) -> None:
        if path in SPOILERS:
            self.tokens.clear()


@pytest.fixture(scope="module")
def fuzz_env(_schema: str, redis_url: str, tmp_path_factory) -> Iterator[FuzzEnv]:
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": _schema,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": unique_prefix(),
            "LOG_DIR": str(tmp_path_factory.mktemp("fuzz-logs")),
        },
    )
    env = FuzzEnv(app)
    with app.app_context():
        for rol in ROLES:
            env.usuario_ids[rol] = UsuarioFactory(rol=rol, username=f"fuzz_{rol}").id
        productos = [
            ProductoFactory(precio=Decimal("19.99"), stock=1000, categoria="otros"),
            ProductoFactory(precio=Decimal("250.00"), stock=5, descuento=15),
            ProductoFactory(precio=Decimal("3.50"), stock=0, categoria="herramientas"),
            ProductoFactory(activo=False),
        ]
        for estado in ("pendiente", "confirmado", "en_camino", "entregado", "cancelado"):
            PedidoFactory(
                usuario_id=env.usuario_ids["cliente"],
                estado=estado,
                total=Decimal("19.99"),
                mensajero_id=env.usuario_ids["mensajero"],
            )
        del productos
        _db.session.remove()
    yield env
    with app.app_context():
        _db.session.remove()
        tables = ", ".join(t.name for t in reversed(_db.metadata.sorted_tables))
        with _db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        _db.engine.dispose()
