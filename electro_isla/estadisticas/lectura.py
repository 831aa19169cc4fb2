"""Reading a rollup as it is now: its rows plus its unfolded deltas, in one statement.

What is not folded yet sits beside each rollup: the deltas the triggers wrote
(migrations 0007-0011) and, since 0017, the pedidos and lines no fold has taken (read
through models.delta_de's views); a fold moves them in now and then. Every read
therefore sums both (`vivo`), so one snapshot sees a fold either wholly or not at
all. The all-history figures read
the totals per key (models.TOTAL_DE) instead of the daily rows, and the top tens
read the rollup's index merged with the few keys that have deltas: neither grows
with history. The statements are built once (functools.cache) and bound at
execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Date, Subquery, Table, bindparam, cast, func, null, select, union_all

from electro_isla.estadisticas import documentos as doc
from electro_isla.estadisticas import models as r
from electro_isla.estadisticas.ventana import Meses, primer_dia, ultimo_dia
from electro_isla.extensions import db


def vivo(rollup: Table, *columnas: str) -> Subquery:
    """The rollup's rows and its unfolded deltas (`columnas`, default all but `slot`):
    sum them per key."""
    names = columnas or [c.name for c in rollup.columns if c.name != "slot"]
    delta = r.delta_de(rollup, *names)
    return union_all(
        select(*(rollup.c[n] for n in names)), select(*(delta.c[n] for n in names))
    ).subquery(f"{rollup.name}_vivo")


def total_vivo(rollup: Table, *columnas: str) -> Subquery:
    """The rollup's all-history totals (models.TOTAL_DE, a row per key) and its
    unfolded deltas, as rows of `columnas` to sum (per key when the key is one of
    them): no scan of the daily rows, however long the history. Only the columns
    asked for are read, so a cached figure depends on no other."""
    total, delta = r.TOTAL_DE[rollup.name], r.delta_de(rollup, *columnas)
    return union_all(
        select(*(total.c[n] for n in columnas)), select(*(delta.c[n] for n in columnas))
    ).subquery(f"{total.name}_vivo")


# The window's first and last UTC day, bound at execution: the statements below are
# built once (functools.cache), so a MISS spends no time building SQLAlchemy
# constructs or computing their cache keys from scratch.
DESDE, HASTA = bindparam("desde", type_=Date), bindparam("hasta", type_=Date)


@cache
def _por_dia_y_por_clave(rollup: Table, clave: str, valores: tuple[str, ...]) -> Any:
    v = vivo(rollup, "dia", *valores)
    dias = (
        select(
            v.c.dia,
            cast(null(), rollup.c[clave].type).label(clave),
            *(func.sum(v.c[x]).label(x) for x in valores),
        )
        .where(v.c.dia >= DESDE, v.c.dia <= HASTA)
        .group_by(v.c.dia)
    )
    t = total_vivo(rollup, clave, *valores)
    claves = select(
        cast(null(), Date).label("dia"), t.c[clave], *(func.sum(t.c[x]).label(x) for x in valores)
    ).group_by(t.c[clave])
    return union_all(dias, claves)


def por_dia_y_por_clave(
    rollup: Table, clave: str, valores: tuple[str, ...], ventana: Meses
) -> tuple[list[Sequence[Any]], dict[Any, Sequence[Any]]]:
    """In one statement: (dia, Σ valores) per window day, and {clave: Σ valores} over
    all history (from the totals per key, so a long history costs nothing)."""
    por_dia, por_clave = [], {}
    stmt = _por_dia_y_por_clave(rollup, clave, valores)
    # The UTC days that can hold a window instant (the rest would be dropped).
    dias = {"desde": primer_dia(ventana), "hasta": ultimo_dia(ventana)}
    for dia, key, *values in db.session.execute(stmt, dias):
        if dia is None:
            por_clave[key] = values
        else:
            por_dia.append((dia, *values))
    return por_dia, por_clave


@cache
def top_exacto(
    rollup: Table, clave: str, orden: str, otras: tuple[str, ...] = (), n: int = doc.TOP
) -> Subquery:
    """The n keys with the largest `orden` > 0 (ties by key), rollup + deltas.

    The rollup's index gives the best keys that have no delta; the keys with
    deltas (few: the fold empties them) are summed apart and merged in.
    """
    valores = (orden, *otras)
    delta = r.delta_de(rollup, clave, *valores)
    d = (
        select(delta.c[clave], *(func.sum(delta.c[v]).label(v) for v in valores))
        .group_by(delta.c[clave])
        .cte(f"{delta.name}_sum")
    )
    sin_delta = (
        select(rollup.c[clave], *(rollup.c[v] for v in valores))
        .where(rollup.c[orden] > 0, rollup.c[clave].not_in(select(d.c[clave])))
        .order_by(rollup.c[orden].desc(), rollup.c[clave])
        .limit(n)
        .subquery()
    )
    con_delta = select(
        d.c[clave],
        *((func.coalesce(rollup.c[v], 0) + d.c[v]).label(v) for v in valores),
    ).select_from(d.outerjoin(rollup, rollup.c[clave] == d.c[clave]))
    todos = union_all(select(*sin_delta.c), con_delta).subquery()
    return (
        select(*todos.c)
        .where(todos.c[orden] > 0)
        .order_by(todos.c[orden].desc(), todos.c[clave])
        .limit(n)
        .subquery()
    )
