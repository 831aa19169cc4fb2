"""Every rollup row recomputed from the raw rows: what `estadisticas-rebuild` writes
and what `estadisticas-check` compares row by row.

The endpoints show a part of the rollups (the top tens, the window's months), so a
check of their figures alone passed a drifted producto outside the top ten (a DBA's
probe). Here each keyed rollup is the raw rows grouped by its key; the rollup as
the readers see it is its rows plus its unfolded deltas (models.delta_de), summed
per key; a key missing on one side counts as zeros.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    Select,
    Table,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)

from electro_isla.estadisticas import models as r
from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_VENTA, DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

# Differing rows listed per table; the rest are counted.
SHOWN = 20


def _dia(column: Any, postgres: bool) -> Any:
    if postgres:
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _centimos(column: Any, postgres: bool) -> Any:
    if postgres:
        return cast(column * 100, BigInteger)
    return cast(func.round(column * 100), Integer)


def desde_crudo(postgres: bool) -> list[tuple[Table, Select]]:
    """(keyed rollup, its rows computed from the raw rows, in the table's column order)."""
    es_venta = Pedido.estado.in_(ESTADOS_VENTA)
    dia_pedido = _dia(Pedido.created_at, postgres).label("dia")
    dia_usuario = _dia(Usuario.date_joined, postgres).label("dia")
    cero = literal(0).label("slot")
    return [
        (
            r.pedidos_dia,
            select(dia_pedido, Pedido.estado, cero, func.count()).group_by(
                dia_pedido, Pedido.estado
            ),
        ),
        (
            r.ventas_dia,
            select(
                dia_pedido,
                Pedido.metodo_pago,
                cero,
                func.count(),
                func.sum(_centimos(Pedido.total, postgres)),
            )
            .where(es_venta)
            .group_by(dia_pedido, Pedido.metodo_pago),
        ),
        (
            r.usuarios_pedidos,
            select(Pedido.usuario_id, func.count()).group_by(Pedido.usuario_id),
        ),
        (
            r.productos_vendidos,
            select(
                DetallePedido.producto_id,
                func.sum(DetallePedido.cantidad),
                func.sum(_centimos(DetallePedido.subtotal, postgres)),
            )
            .join(Pedido, Pedido.id == DetallePedido.pedido_id)
            .where(es_venta)
            .group_by(DetallePedido.producto_id),
        ),
        (
            r.usuarios_dia,
            select(dia_usuario, Usuario.rol, cero, func.count()).group_by(dia_usuario, Usuario.rol),
        ),
    ]


def _por_clave(rows: Any, claves: list[str], valores: list[str]) -> Any:
    """`rows` summed per key, as a subquery of claves + valores."""
    return (
        select(*(rows.c[k] for k in claves), *(func.sum(rows.c[v]).label(v) for v in valores))
        .group_by(*(rows.c[k] for k in claves))
        .subquery()
    )


def _diferencias(
    nombre: str, crudo: Any, leido: Any, claves: list[str], valores: list[str]
) -> list[str]:
    """One line per key whose sums differ (raw first, as the figure lines), at most SHOWN.

    Every key of either side, each side LEFT JOINed to it (a FULL JOIN needs SQLite
    3.39, newer than some distributions' Python has)."""
    todas = union(
        select(*(crudo.c[k] for k in claves)), select(*(leido.c[k] for k in claves))
    ).subquery("claves")
    en = {lado: and_(*(lado.c[k] == todas.c[k] for k in claves)) for lado in (crudo, leido)}
    par = {v: (func.coalesce(crudo.c[v], 0), func.coalesce(leido.c[v], 0)) for v in valores}
    claves_de = [todas.c[k] for k in claves]
    query = (
        select(*claves_de, *(x for v in valores for x in par[v]))
        .select_from(todas.outerjoin(crudo, en[crudo]).outerjoin(leido, en[leido]))
        .where(or_(*(a != b for a, b in par.values())))
    )
    rows = db.session.execute(query.order_by(*claves_de).limit(SHOWN + 1)).all()
    lines = []
    for row in rows[:SHOWN]:
        key = ", ".join(f"{k}={row[i]}" for i, k in enumerate(claves))
        for j, v in enumerate(valores):
            a, b = row[len(claves) + 2 * j], row[len(claves) + 2 * j + 1]
            if a != b:
                lines.append(f"rows {nombre}[{key}].{v}: {a} != {b}")
    if len(rows) > SHOWN:
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        lines.append(f"rows {nombre}: {total - SHOWN} more keys differ")
    return lines


def comparar() -> list[str]:
    """Every keyed rollup and all-history total (rows + unfolded deltas) against the
    raw rows grouped by its key: one line per differing value."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    found = []
    for tabla, source in desde_crudo(postgres):
        columnas = [c.name for c in tabla.columns]
        claves = [c.name for c in tabla.primary_key if c.name != "slot"]
        valores = [c for c in columnas if c not in claves and c != "slot"]
        crudo = select(*(c.label(n) for c, n in zip(source.subquery().c, columnas, strict=True)))
        crudo = crudo.subquery()
        propias = select(*(tabla.c[c] for c in claves + valores))
        deltas = r.delta_de(tabla)
        delta = select(*(deltas.c[c] for c in claves + valores))
        leido = _por_clave(union_all(propias, delta).subquery(), claves, valores)
        found += _diferencias(tabla.name, crudo, leido, claves, valores)
        total = r.TOTAL_DE.get(tabla.name)
        if total is not None:  # its rollup summed over every day, one row per key
            (clave,) = [c.name for c in total.primary_key]
            delta = select(*(deltas.c[c] for c in (clave, *valores)))
            leido = _por_clave(union_all(select(*total.c), delta).subquery(), [clave], valores)
            found += _diferencias(
                total.name, _por_clave(crudo, [clave], valores), leido, [clave], valores
            )
    return found
