"""The rollups the database keeps equal the raw-row computation after every write.

Randomised sequences of writes through the API, the ORM and raw SQL (orders,
every estado transition including cancel, created_at moved across local month
boundaries, lines and orders deleted or changed, usuarios added, moved and
re-roled, products renamed), in three time zones with timestamps seconds from
local midnights, on PostgreSQL (statement-level triggers) and SQLite (row
triggers; their deltas folded at random steps). After each step every figure served from the rollups must equal
estadisticas/crudo.py, which test_estadisticas_figures checks against plain Python.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import bindparam, select, text

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import UTCDateTime
from electro_isla.estadisticas import operaciones
from electro_isla.estadisticas.ventana import cortes, meses
from electro_isla.extensions import db
from electro_isla.pedidos.models import METODOS_PAGO, TRANSICIONES, DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario
from tests.estadisticas.estadisticas_data import build_shop, insert_shop, local_month_starts
from tests.helpers import auth_headers

ESTADOS = list(TRANSICIONES)

# (TIMEZONE, frozen now, seed): now a few seconds after a local midnight on the 1st.
CASES = [
    ("UTC", datetime(2027, 1, 1, 0, 0, 2, tzinfo=UTC), 31),
    # Cuba leaves DST at local midnight of 2026-11-01 (that midnight happens twice).
    ("America/Havana", datetime(2026, 11, 1, 4, 0, 1, tzinfo=UTC), 32),
    # +05:45: the local month starts at 18:15 UTC the day before.
    ("Asia/Kathmandu", datetime(2026, 12, 31, 18, 15, 3, tzinfo=UTC), 33),
]
STEPS = 45


@dataclass
class Ctx:
    app: Flask
    client: FlaskClient
    headers: dict[str, str]
    rnd: random.Random
    boundaries: list[datetime]
    log: list[str]

    def near_midnight(self) -> datetime:
        return self.rnd.choice(self.boundaries) + timedelta(seconds=self.rnd.randint(-3, 3))

    def ids(self, model: type, *where) -> list[int]:  # noqa: ANN002
        return list(db.session.scalars(select(model.id).where(*where).order_by(model.id)))

    def pick(self, model: type, *where) -> int | None:  # noqa: ANN002
        ids = self.ids(model, *where)
        return self.rnd.choice(ids) if ids else None

    def sql(self, statement: str, **params) -> None:  # noqa: ANN003
        stmt = text(statement)
        typed = [
            bindparam(k, type_=UTCDateTime) for k, v in params.items() if isinstance(v, datetime)
        ]
        if typed:
            stmt = stmt.bindparams(*typed)
        db.session.execute(stmt, params)
        db.session.commit()


# -- writes through the API ------------------------------------------------------


def api_nuevo_pedido(c: Ctx) -> None:
    ids = c.ids(Producto, Producto.activo.is_(True), Producto.stock > 0)
    items = [{"producto_id": pid, "cantidad": 1} for pid in c.rnd.sample(ids, min(2, len(ids)))]
    body = {
        "items": items,
        "metodo_pago": c.rnd.choice(METODOS_PAGO),
        "direccion_entrega": "Calle 3",
        "telefono": "555",
    }
    db.session.remove()
    response = c.client.post("/api/pedidos/", json=body, headers=c.headers)
    assert response.status_code == 201, response.get_json()


def api_transicion(c: Ctx) -> None:
    pid = c.pick(Pedido, Pedido.estado.notin_(["entregado", "cancelado"]))
    if pid is None:
        return
    actual = db.session.get(Pedido, pid).estado
    nuevo = c.rnd.choice(sorted(TRANSICIONES[actual]))
    db.session.remove()
    response = c.client.patch(
        f"/api/admin/pedidos/{pid}/", json={"estado": nuevo}, headers=c.headers
    )
    assert response.status_code == 200, response.get_json()
    c.log[-1] += f" {pid}:{actual}->{nuevo}"


# -- writes through the ORM ------------------------------------------------------


def orm_mover_pedido(c: Ctx) -> None:
    pedido = db.session.get(Pedido, c.pick(Pedido))
    pedido.created_at = c.near_midnight()
    db.session.commit()


def orm_cambiar_pedido(c: Ctx) -> None:
    pedido = db.session.get(Pedido, c.pick(Pedido))
    pedido.metodo_pago = c.rnd.choice(METODOS_PAGO)
    pedido.total = Decimal(c.rnd.randint(0, 99999)) / 100
    pedido.usuario_id = c.pick(Usuario)
    db.session.commit()


def orm_borrar_linea(c: Ctx) -> None:
    detalle = db.session.get(DetallePedido, c.pick(DetallePedido))
    if detalle is not None:
        db.session.delete(detalle)
        db.session.commit()


def orm_cambiar_linea(c: Ctx) -> None:
    detalle = db.session.get(DetallePedido, c.pick(DetallePedido))
    if detalle is not None:
        detalle.cantidad = c.rnd.randint(1, 9)
        detalle.subtotal = Decimal(c.rnd.randint(1, 99999)) / 100
        detalle.producto_id = c.pick(Producto)
        db.session.commit()


def orm_borrar_pedido(c: Ctx) -> None:
    db.session.delete(db.session.get(Pedido, c.pick(Pedido)))
    db.session.commit()


def orm_nuevo_usuario(c: Ctx) -> None:
    n = c.rnd.randrange(10**9)
    db.session.add(
        Usuario(
            username=f"nuevo{n}",
            email=f"nuevo{n}@example.test",
            password_hash="x",
            rol=c.rnd.choice(ROLES),
            date_joined=c.near_midnight(),
        )
    )
    db.session.commit()


def orm_mover_usuario(c: Ctx) -> None:
    usuario = db.session.get(Usuario, c.pick(Usuario))
    usuario.date_joined = c.near_midnight()
    if c.rnd.random() < 0.5 and usuario.id != 1:
        usuario.rol = c.rnd.choice(ROLES)
    db.session.commit()


def orm_renombrar_producto(c: Ctx) -> None:
    producto = db.session.get(Producto, c.pick(Producto))
    producto.nombre = f"Renombrado {c.rnd.randrange(1000)}"
    db.session.commit()


# -- writes in raw SQL -----------------------------------------------------------


def sql_estado(c: Ctx) -> None:
    ids = c.ids(Pedido)
    chosen = c.rnd.sample(ids, min(len(ids), c.rnd.randint(1, 5)))
    for pid in chosen:  # no transition rules for raw SQL
        c.sql("UPDATE pedidos SET estado = :e WHERE id = :id", e=c.rnd.choice(ESTADOS), id=pid)


def sql_bulk(c: Ctx) -> None:
    a, b = c.rnd.sample(ESTADOS, 2)
    c.sql("UPDATE pedidos SET estado = :b WHERE estado = :a", a=a, b=b)


def sql_mover(c: Ctx) -> None:
    c.sql(
        "UPDATE pedidos SET created_at = :t WHERE id = :id", t=c.near_midnight(), id=c.pick(Pedido)
    )


def sql_borrar_pedido(c: Ctx) -> None:
    c.sql("DELETE FROM pedidos WHERE id = :id", id=c.pick(Pedido))


def sql_pedido_vendido(c: Ctx) -> None:
    """A sale inserted directly (an import), then its lines in a second statement."""
    pid = (db.session.scalar(select(db.func.max(Pedido.id))) or 0) + 1000
    c.sql(
        "INSERT INTO pedidos (id, usuario_id, estado, metodo_pago, total, direccion_entrega, "
        "telefono, notas, created_at, updated_at) VALUES (:id, :u, :e, :m, 123.45, '', '', '', "
        ":t, :t)",
        id=pid,
        u=c.pick(Usuario),
        e=c.rnd.choice(["confirmado", "entregado", "pendiente"]),
        m=c.rnd.choice(METODOS_PAGO),
        t=c.near_midnight(),
    )
    productos = c.rnd.sample(c.ids(Producto), 2)
    c.sql(
        "INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, "
        "precio_unitario, subtotal) VALUES (:p, :a, 'x', 2, 10.5, 21.00), (:p, :b, 'y', 1, 3, 3)",
        p=pid,
        a=productos[0],
        b=productos[1],
    )


def sql_mover_linea(c: Ctx) -> None:
    detalle = c.pick(DetallePedido)
    if detalle is not None:
        c.sql(
            "UPDATE detalles_pedido SET pedido_id = :p WHERE id = :id", p=c.pick(Pedido), id=detalle
        )


def sql_usuarios(c: Ctx) -> None:
    c.sql(
        "UPDATE usuarios SET date_joined = :t, rol = :r WHERE id = :id",
        t=c.near_midnight(),
        r=c.rnd.choice(ROLES),
        id=c.pick(Usuario, Usuario.id != 1),
    )


def sql_borrar_usuario(c: Ctx) -> None:
    sin_pedidos = c.pick(Usuario, Usuario.id != 1, ~Usuario.id.in_(select(Pedido.usuario_id)))
    if sin_pedidos is not None:
        c.sql("DELETE FROM refresh_tokens WHERE usuario_id = :id", id=sin_pedidos)
        c.sql("UPDATE pedidos SET mensajero_id = NULL WHERE mensajero_id = :id", id=sin_pedidos)
        c.sql("DELETE FROM usuarios WHERE id = :id", id=sin_pedidos)


def sql_plegar(c: Ctx) -> None:
    """The fold (PostgreSQL): the deltas move into the rollups; figures must not move."""
    if db.session.get_bind().dialect.name == "postgresql":
        c.sql("SELECT estadisticas_plegar()")


WRITES: list[Callable[[Ctx], None]] = [
    api_nuevo_pedido,
    api_nuevo_pedido,
    api_transicion,
    api_transicion,
    api_transicion,
    orm_mover_pedido,
    orm_cambiar_pedido,
    orm_borrar_linea,
    orm_cambiar_linea,
    orm_borrar_pedido,
    orm_nuevo_usuario,
    orm_mover_usuario,
    orm_renombrar_producto,
    sql_estado,
    sql_bulk,
    sql_mover,
    sql_borrar_pedido,
    sql_pedido_vendido,
    sql_mover_linea,
    sql_usuarios,
    sql_borrar_usuario,
    sql_plegar,
    sql_plegar,
]


def _assert_rollups_exact(step: str) -> dict:
    raw, found = operaciones.comparar_rollups(meses())
    db.session.rollback()
    assert not found, f"after {step}: {found[:10]}"
    return raw


def _run(app: Flask, tz: str, now: datetime, seed: int) -> None:
    app.config["TIMEZONE"] = tz
    zone = ZoneInfo(tz)
    rnd = random.Random(seed)
    with time_machine.travel(now, tick=False):
        with app.app_context():
            insert_shop(build_shop(seed, now, zone))
            # The months really are cut inside UTC days (except in UTC).
            assert bool(cortes(meses())) == (tz != "UTC")
        ctx = Ctx(
            app,
            app.test_client(),
            auth_headers(app, 1),
            rnd,
            local_month_starts(now, zone, 14),
            ["start"],
        )
        with app.app_context():
            first = _assert_rollups_exact("insert_shop")
            for step in range(STEPS):
                write = rnd.choice(WRITES)
                ctx.log.append(f"{step}:{write.__name__}")
                write(ctx)
                db.session.remove()
                _assert_rollups_exact(" / ".join(ctx.log))
            last = _assert_rollups_exact("the end")
            # The sequence changed the figures (it is not testing an idle shop).
            assert first != last
            # And the endpoints answer the same figures.
            assert operaciones.check() == ([], [], [])
            db.session.remove()


@pytest.mark.parametrize(("tz", "now", "seed"), CASES, ids=[c[0] for c in CASES])
def test_random_writes_keep_rollups_exact_on_postgresql(app, tz, now, seed):
    _run(app, tz, now, seed)


@pytest.mark.parametrize(("tz", "now", "seed"), CASES, ids=[c[0] for c in CASES])
def test_random_writes_keep_rollups_exact_on_sqlite(sqlite_app, tz, now, seed):
    _run(sqlite_app, tz, now, seed + 100)
