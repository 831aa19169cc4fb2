"""`flask estadisticas-check` and `flask estadisticas-rebuild`.

check: every figure recomputed from the raw rows (estadisticas/crudo.py, the
independent reference), rendered through the statistics' schemas, against (a)
the figures each statistic's fetch gives now, and every rollup row against the raw
rows grouped by its key (estadisticas/filas.py), and (b) what the endpoints answer
(their cached rendering, fetched on a miss) against the rollups' figures read
around it; all three read from the one table, estadisticas/registro.py. On
PostgreSQL the raw and rollup reads share one REPEATABLE READ snapshot, and an
endpoint is compared only when no write moved the rollups during its read, so
concurrent orders cannot show up as differences.

rebuild: the rollups emptied and recomputed from the raw rows in one
transaction. On PostgreSQL it waits for a running fold (its advisory lock), then
the source tables are locked in SHARE mode:
writers wait (readers do not) until COMMIT, so no trigger adds to a rollup the
rebuild is also counting. Cached statistics are invalidated after COMMIT.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import case, delete, func, insert, literal, select

from electro_isla.cache import invalidate_after_commit
from electro_isla.estadisticas import crudo, filas
from electro_isla.estadisticas import models as r
from electro_isla.estadisticas.registro import ESTADISTICAS, rendered
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db
from electro_isla.json import dumps, loads

GENERATED = ("generado_en", "fecha_generacion")
SOURCES = ("pedidos", "detalles_pedido", "usuarios")


def _as_answered(endpoint: str, data: dict[str, Any]) -> Any:
    """`data` as the endpoint's body would carry it (its schema, JSON), without timestamps."""
    body = loads(dumps(ESTADISTICAS[endpoint].schema().dump(loads(dumps(data)))))
    return _sin_hora(body)


def _sin_hora(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in GENERATED}


def diferencias_entre(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ, one 'path: a != b' line each."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(
                    f"{path}.{key}: {a.get(key, '<missing>')!r} != {b.get(key, '<missing>')!r}"
                )
            else:
                out.extend(diferencias_entre(a[key], b[key], f"{path}.{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [
            line
            for i, (x, y) in enumerate(zip(a, b, strict=False))
            for line in diferencias_entre(x, y, f"{path}[{i}]")
        ]
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items != {len(b)} items")
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def comparar_rollups(ventana: Any) -> tuple[dict[str, Any], list[str]]:
    """(raw figures as answered, differences of the rollup figures from them)."""
    raw = {name: _as_answered(name, data) for name, data in crudo.todas(ventana).items()}
    served = {name: _as_answered(name, e.fetch(ventana)) for name, e in ESTADISTICAS.items()}
    found = [
        f"rollups {name}{d}" for name in raw for d in diferencias_entre(raw[name], served[name])
    ]
    # The figures show a part of the rollups (top tens, the window): every row as well.
    return raw, found + filas.comparar()


# Reads of one endpoint before it is left out as "not compared" (orders kept changing it).
ATTEMPTS = 5


class Revision(NamedTuple):
    """What `estadisticas-check` found: rollup and endpoint differences, and the
    endpoints it could not compare because every read of theirs met a write."""

    rollups: list[str]
    endpoints: list[str]
    unsettled: list[str]


def check() -> Revision:
    """The rollups against the raw rows in one snapshot, then each endpoint's answer
    against the rollups' figures read just before and just after it.

    The endpoints read the cache outside that snapshot, so an order committed in
    between is no difference (a live shop's check listed its own orders as such). An
    answer is compared only when the rollups gave the same figures before and after
    it, and a difference is one that is still there after an invalidation's delay;
    rollups == raw is what the first part proves. Two writes that cancel out within
    one read are not seen (the answer then equals the figures anyway)."""
    session = db.session
    session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    ventana = meses()
    raw, rollups = comparar_rollups(ventana)
    session.rollback()  # end the snapshot; the endpoints read as a request would
    # A write's invalidation may still be on its way (the outbox applies a failed bump
    # within CACHE_PENDING_CHECK_MS): a difference counts once it outlived that.
    settle = current_app.config["CACHE_PENDING_CHECK_MS"] / 1000 + 0.1
    endpoints, unsettled = [], []
    for name in raw:
        for attempt in range(ATTEMPTS):
            # Each read of the rollups in one snapshot, as a MISS reads them (figuras).
            before = _as_answered(name, ESTADISTICAS[name].figuras(meses()))
            answered = _sin_hora(loads(rendered(name)["body"]))
            after = _as_answered(name, ESTADISTICAS[name].figuras(meses()))
            session.rollback()
            if before != after:
                continue  # a write moved the figures during the read: read again
            differences = diferencias_entre(before, answered)
            if not differences or attempt == ATTEMPTS - 1:
                endpoints += [f"endpoint {name}{d}" for d in differences]
                break
            time.sleep(settle)
        else:
            unsettled.append(name)
    return Revision(rollups, endpoints, unsettled)


# -- fold ----------------------------------------------------------------------


def plegar() -> int:
    """Fold the committed deltas and the rows of ended transactions into the rollups
    (PostgreSQL); rows moved."""
    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        return 0  # SQLite's triggers write the rollups directly
    # The delta tables, and the pedidos and lines no fold took yet (0017).
    moved = sum(session.scalar(select(func.count()).select_from(t)) or 0 for t in r.SIN_PLEGAR)
    session.execute(db.text("SELECT estadisticas_plegar()"))
    session.commit()
    return moved


# -- rebuild -------------------------------------------------------------------


def rebuild() -> dict[str, int]:
    """Recompute every rollup from the raw rows in one transaction; rows written per table."""
    session = db.session
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The writers first: they wait for COMMIT, and those in flight finish (EXCLUSIVE on
        # pedidos and lines also waits for a SELECT ... FOR UPDATE of a row the retag
        # below may write). Then the fold's lock, before the DELETEs (migration 0015: a
        # fold committing after them left rollup rows no raw row backs). The other order
        # deadlocked with an UPDATE whose trigger asks for that lock shared (0017).
        session.execute(db.text("LOCK TABLE pedidos, detalles_pedido IN EXCLUSIVE MODE"))
        session.execute(db.text("LOCK TABLE usuarios IN SHARE MODE"))
        session.execute(db.text("SELECT pg_advisory_xact_lock(hashtext('estadisticas_plegar'))"))
        # Every row is counted below, so every row is taken (migration 0017).
        session.execute(db.text("SELECT estadisticas_horizonte_desde_cero()"))
    for table in r.ROLLUPS:
        session.execute(delete(table))
    for table, source in filas.desde_crudo(postgres):
        columns = [c.name for c in table.columns]
        session.execute(insert(table).from_select(columns, source))
    up = r.usuarios_pedidos
    session.execute(
        insert(r.retencion).from_select(
            ["slot", "con_pedidos", "recurrentes"],
            select(
                literal(0),
                func.count(),
                func.coalesce(func.sum(case((up.c.pedidos > 1, 1), else_=0)), 0),
            ).where(up.c.pedidos > 0),
        )
    )
    written = {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in r.ROLLUPS}
    # The rollups changed under every cached statistic; their sources are what it lists.
    invalidate_after_commit(session, *SOURCES)
    session.commit()
    current_app.logger.info("estadisticas-rebuild: %s", written)
    return written
