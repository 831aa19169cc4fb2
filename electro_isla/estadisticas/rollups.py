"""The statistics read from the rollups the database keeps (see estadisticas/models.py).

A MISS reads a few hundred rollup rows per year of history (days × keys), the
top tens through their indexes, and, for the month boundaries that fall inside
a UTC day, the raw rows of the shorter side of that day through the
`created_at`/`date_joined` index (estadisticas/ventana.py). The figures are
exactly those of estadisticas/crudo.py, which `flask estadisticas-check` verifies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import money, utcnow
from electro_isla.estadisticas import models as r
from electro_isla.estadisticas.ventana import (
    MESES,
    ZERO,
    Corte,
    Meses,
    cortes,
    de_centimos,
    documento_ventas,
    exacto,
    mes_del_dia,
)
from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_EN_PROCESO, ESTADOS_VENTA, Pedido
from electro_isla.usuarios.models import ROLES, Usuario

TOP = 10

Valores = list[Any]


def repartir(
    ventana: Meses,
    cuts: dict[date, Corte],
    dias: Iterable[tuple[date, Any, Sequence[Any]]],
    crudos: dict[tuple[date, Any], Sequence[Any]],
    width: int,
) -> dict[tuple[int, Any], Valores]:
    """Add per-day rollup values into window months: {(month index, key): values}.

    `dias` yields (UTC day, key, values); `crudos` holds the raw values of each
    cut day's shorter side. A cut day gives its raw part to one month and the rest
    (rollup minus raw) to the other; months outside the window are dropped.
    """
    out: dict[tuple[int, Any], Valores] = defaultdict(lambda: [0] * width)

    def add(mes: int, key: Any, values: Sequence[Any], sign: int = 1) -> None:
        if 0 <= mes < MESES:
            acc = out[(mes, key)]
            for i, v in enumerate(values):
                acc[i] += sign * v

    for dia, key, values in dias:
        cut = cuts.get(dia)
        if cut is None:
            add(mes_del_dia(ventana, dia), key, values)
        else:
            add(cut.mes_resto, key, values)
    for (dia, key), values in crudos.items():
        cut = cuts[dia]
        add(cut.mes_crudo, key, values)
        add(cut.mes_resto, key, values, -1)
    return out


def _corte_de(column: Any, cuts: Sequence[Corte]) -> Any:
    return case(
        *((and_(column >= c.desde, column < c.hasta), i) for i, c in enumerate(cuts)),
        else_=None,
    )


def _en_cortes(column: Any, cuts: Sequence[Corte]) -> Any:
    return or_(*(and_(column >= c.desde, column < c.hasta) for c in cuts))


def crudo_pedidos(cuts: dict[date, Corte]) -> dict[tuple[date, str], Valores]:
    """Raw pedidos in the cut ranges: {(day, metodo): [sales, Σ sales total, all pedidos]}."""
    if not cuts:
        return {}
    lista = list(cuts.values())
    venta = case((Pedido.estado.in_(ESTADOS_VENTA), 1), else_=0)
    inner = (
        select(
            _corte_de(Pedido.created_at, lista).label("corte"),
            Pedido.metodo_pago.label("metodo"),
            venta.label("venta"),
            Pedido.total,
        )
        .where(_en_cortes(Pedido.created_at, lista))
        .subquery()
    )
    rows = db.session.execute(
        select(inner.c.corte, inner.c.metodo, inner.c.venta, func.count(), func.sum(inner.c.total))
        .where(inner.c.corte.is_not(None))
        .group_by(inner.c.corte, inner.c.metodo, inner.c.venta)
    ).all()
    out: dict[tuple[date, str], Valores] = defaultdict(lambda: [0, ZERO, 0])
    for corte, metodo, es_venta, n, total in rows:
        acc = out[(lista[corte].dia, metodo)]
        acc[2] += n
        if es_venta:
            acc[0] += n
            acc[1] += exacto(total)
    return dict(out)


# -- ventas --------------------------------------------------------------------


def ventas_por_mes_y_metodo(ventana: Meses) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cuts = cortes(ventana)
    rows = db.session.execute(
        select(
            r.ventas_dia.c.dia,
            r.ventas_dia.c.metodo_pago,
            func.sum(r.ventas_dia.c.pedidos),
            func.sum(r.ventas_dia.c.total_centimos),
        ).group_by(r.ventas_dia.c.dia, r.ventas_dia.c.metodo_pago)
    ).all()
    dias = [(dia, metodo, (int(n), de_centimos(c))) for dia, metodo, n, c in rows]
    crudos = {key: v[:2] for key, v in crudo_pedidos(cuts).items()}
    por_mes: dict[int, Valores] = defaultdict(lambda: [0, ZERO])
    for (mes, _metodo), (n, total) in repartir(ventana, cuts, dias, crudos, 2).items():
        por_mes[mes][0] += n
        por_mes[mes][1] += total
    por_metodo: dict[str, Valores] = defaultdict(lambda: [0, ZERO])
    for _dia, metodo, (n, total) in dias:
        por_metodo[metodo][0] += n
        por_metodo[metodo][1] += total
    meses_ = [
        {"mes": etiqueta, "total": money(por_mes[i][1]), "pedidos": por_mes[i][0]}
        for i, etiqueta in enumerate(ventana.etiquetas)
    ]
    metodos = [
        {"metodo_pago": metodo, "count": n, "total": money(total)}
        for metodo, (n, total) in sorted(por_metodo.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if n > 0
    ]
    return meses_, metodos


def productos_mas_vendidos() -> list[dict[str, Any]]:
    pv = r.productos_vendidos
    # The cantidad index gives the order; ties are sorted on producto_id within a group.
    top = (
        select(pv.c.producto_id, pv.c.cantidad, pv.c.ingresos_centimos)
        .where(pv.c.cantidad > 0)
        .order_by(pv.c.cantidad.desc(), pv.c.producto_id)
        .limit(TOP)
        .subquery()
    )
    stmt = (
        select(
            top.c.producto_id,
            Producto.nombre,
            Producto.categoria,
            top.c.cantidad,
            top.c.ingresos_centimos,
        )
        .join(Producto, Producto.id == top.c.producto_id)
        .order_by(top.c.cantidad.desc(), top.c.producto_id)
    )
    return [
        {
            "producto_id": producto_id,
            "producto__nombre": nombre,
            "producto__categoria": categoria,
            "cantidad_vendida": int(cantidad),
            "ingresos": money(de_centimos(centimos)),
        }
        for producto_id, nombre, categoria, cantidad, centimos in db.session.execute(stmt)
    ]


def ventas(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    por_mes, metodos = ventas_por_mes_y_metodo(ventana)
    return documento_ventas(generado_en, por_mes, metodos, productos_mas_vendidos())


# -- usuarios ------------------------------------------------------------------


def _crudo_usuarios(cuts: dict[date, Corte]) -> dict[tuple[date, None], Valores]:
    if not cuts:
        return {}
    lista = list(cuts.values())
    inner = (
        select(_corte_de(Usuario.date_joined, lista).label("corte"))
        .where(_en_cortes(Usuario.date_joined, lista))
        .subquery()
    )
    rows = db.session.execute(
        select(inner.c.corte, func.count())
        .where(inner.c.corte.is_not(None))
        .group_by(inner.c.corte)
    ).all()
    return {(lista[corte].dia, None): [n] for corte, n in rows}


def usuarios_por_mes_y_rol(ventana: Meses) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cuts = cortes(ventana)
    ud = r.usuarios_dia
    rows = db.session.execute(
        select(ud.c.dia, ud.c.rol, func.sum(ud.c.usuarios)).group_by(ud.c.dia, ud.c.rol)
    ).all()
    por_rol: dict[str, int] = defaultdict(int)
    for _dia, rol, n in rows:
        por_rol[rol] += int(n)
    dias = [(dia, None, (int(n),)) for dia, _rol, n in rows]
    por_mes = repartir(ventana, cuts, dias, _crudo_usuarios(cuts), 1)
    return (
        [
            {"mes": etiqueta, "nuevos": por_mes.get((i, None), [0])[0]}
            for i, etiqueta in enumerate(ventana.etiquetas)
        ],
        [{"rol": rol, "count": por_rol.get(rol, 0)} for rol in ROLES],
    )


def usuarios_mas_activos() -> list[dict[str, Any]]:
    up = r.usuarios_pedidos
    top = (
        select(up.c.usuario_id, up.c.pedidos)
        .where(up.c.pedidos > 0)
        .order_by(up.c.pedidos.desc(), up.c.usuario_id)
        .limit(TOP)
        .subquery()
    )
    stmt = (
        select(Usuario.id, Usuario.username, Usuario.first_name, Usuario.last_name, top.c.pedidos)
        .join(top, top.c.usuario_id == Usuario.id)
        .order_by(top.c.pedidos.desc(), Usuario.id)
    )
    return [
        {
            "id": uid,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "pedidos_count": int(n),
        }
        for uid, username, first_name, last_name, n in db.session.execute(stmt)
    ]


def retencion() -> dict[str, Any]:
    con, rec = db.session.execute(
        select(func.sum(r.retencion.c.con_pedidos), func.sum(r.retencion.c.recurrentes))
    ).one()
    total, recurrentes = int(con or 0), int(rec or 0)
    tasa = money(Decimal(100 * recurrentes) / total) if total else money(ZERO)
    return {"total_usuarios": total, "usuarios_recurrentes": recurrentes, "tasa_retencion": tasa}


def usuarios(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    por_mes, por_rol = usuarios_por_mes_y_rol(ventana)
    return {
        "usuarios_por_mes": por_mes,
        "usuarios_por_rol": por_rol,
        "usuarios_mas_activos": usuarios_mas_activos(),
        **retencion(),
        "generado_en": generado_en,
    }


# -- reporte -------------------------------------------------------------------


def reporte(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    actual = MESES - 1
    # Only the current month's two boundaries matter here.
    cuts = {dia: c for dia, c in cortes(ventana).items() if actual in (c.mes_crudo, c.mes_resto)}
    pd, vd = r.pedidos_dia, r.ventas_dia
    por_estado = {
        estado: int(n)
        for estado, n in db.session.execute(
            select(pd.c.estado, func.sum(pd.c.pedidos)).group_by(pd.c.estado)
        )
    }
    desde, hasta = ventana.inicio_mes_actual.date(), ventana.fin.date()
    dias_mes = db.session.execute(
        select(pd.c.dia, func.sum(pd.c.pedidos))
        .where(pd.c.dia >= desde, pd.c.dia <= hasta)
        .group_by(pd.c.dia)
    ).all()
    ventas_dias = db.session.execute(
        select(vd.c.dia, func.sum(vd.c.total_centimos)).group_by(vd.c.dia)
    ).all()
    crudos = crudo_pedidos(cuts)
    todos: dict[tuple[date, None], Valores] = defaultdict(lambda: [0])
    ingresos_crudos: dict[tuple[date, None], Valores] = defaultdict(lambda: [ZERO])
    for (dia, _metodo), values in crudos.items():  # every metodo of a cut day, added up
        todos[(dia, None)][0] += values[2]
        ingresos_crudos[(dia, None)][0] += values[1]
    dias = ((dia, None, (int(n),)) for dia, n in dias_mes)
    pedidos_mes = repartir(ventana, cuts, dias, dict(todos), 1)
    dias_ventas = [(dia, None, (de_centimos(c),)) for dia, c in ventas_dias]
    ingresos_mes = repartir(ventana, cuts, dias_ventas, dict(ingresos_crudos), 1)
    total_usuarios, total_productos = db.session.execute(
        select(
            select(func.coalesce(func.sum(r.usuarios_dia.c.usuarios), 0)).scalar_subquery(),
            select(func.count(Producto.id)).where(Producto.activo.is_(True)).scalar_subquery(),
        )
    ).one()
    return {
        "resumen": {
            "total_usuarios": int(total_usuarios),
            "total_productos": int(total_productos),
            "total_pedidos": sum(por_estado.values()),
            "ingresos_totales": money(sum((v[0] for *_d, v in dias_ventas), ZERO)),
            "pedidos_mes": int(pedidos_mes.get((actual, None), [0])[0]),
            "ingresos_mes": money(ingresos_mes.get((actual, None), [ZERO])[0]),
            "pedidos_pendientes": por_estado.get("pendiente", 0),
            "pedidos_en_proceso": sum(por_estado.get(e, 0) for e in ESTADOS_EN_PROCESO),
        },
        "fecha_generacion": generado_en,
        "generado_en": generado_en,
    }
