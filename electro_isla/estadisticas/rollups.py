"""The statistics read from the rollups the database keeps (see estadisticas/models.py).

Every read adds a rollup's rows and its unfolded deltas (estadisticas/lectura.py),
in one statement, so one snapshot sees a fold either wholly or not at all. A MISS reads
the daily rows of the window's days only, the all-history totals from one row per
key (`total_vivo`, models.TOTAL_DE, so neither grows with history), the top tens
through their indexes merged with the few keys that have deltas, and, for the
month boundaries that fall inside a UTC day, the raw rows of the shorter side of
that day through the `created_at`/`date_joined` index
(estadisticas/ventana.py). The figures are exactly those of estadisticas/crudo.py,
which `flask estadisticas-check` verifies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    func,
    or_,
    select,
)

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import ZERO, de_centimos, exacto, money, utcnow
from electro_isla.estadisticas import documentos as doc
from electro_isla.estadisticas import models as r
from electro_isla.estadisticas.lectura import (
    DESDE,
    HASTA,
    por_dia_y_por_clave,
    top_exacto,
    total_vivo,
    vivo,
)
from electro_isla.estadisticas.ventana import (
    MESES,
    Corte,
    Meses,
    cortes,
    mes_del_dia,
)
from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_EN_PROCESO, ESTADOS_VENTA, Pedido
from electro_isla.usuarios.models import ROLES, Usuario

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
    rows, totales = por_dia_y_por_clave(
        r.ventas_dia, "metodo_pago", ("pedidos", "total_centimos"), ventana
    )
    dias = [(dia, None, (int(n), de_centimos(c))) for dia, n, c in rows]
    crudos: dict[tuple[date, None], Valores] = defaultdict(lambda: [0, ZERO])
    for (dia, _metodo), values in crudo_pedidos(cuts).items():
        crudos[(dia, None)][0] += values[0]
        crudos[(dia, None)][1] += values[1]
    por_mes = repartir(ventana, cuts, dias, dict(crudos), 2)
    por_metodo = {metodo: (int(n), de_centimos(c)) for metodo, (n, c) in totales.items()}
    meses_ = {mes: tuple(values) for (mes, _key), values in por_mes.items()}
    return doc.ventas_por_mes(ventana, meses_), doc.metodos_pago(por_metodo)


def productos_mas_vendidos() -> list[dict[str, Any]]:
    # The cantidad index gives the order; ties are sorted on producto_id within a group.
    top = top_exacto(r.productos_vendidos, "producto_id", "cantidad", ("ingresos_centimos",))
    return doc.mas_vendidos(top, "ingresos_centimos", de_centimos)


def ventas(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    por_mes, metodos = ventas_por_mes_y_metodo(ventana)
    return doc.documento_ventas(generado_en, por_mes, metodos, productos_mas_vendidos())


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
    rows, totales = por_dia_y_por_clave(r.usuarios_dia, "rol", ("usuarios",), ventana)
    por_rol = {rol: int(n) for rol, (n,) in totales.items()}
    dias = [(dia, None, (int(n),)) for dia, n in rows]
    por_mes = repartir(ventana, cuts, dias, _crudo_usuarios(cuts), 1)
    return (
        [
            {"mes": etiqueta, "nuevos": por_mes.get((i, None), [0])[0]}
            for i, etiqueta in enumerate(ventana.etiquetas)
        ],
        [{"rol": rol, "count": por_rol.get(rol, 0)} for rol in ROLES],
    )


def usuarios_mas_activos() -> list[dict[str, Any]]:
    top = top_exacto(r.usuarios_pedidos, "usuario_id", "pedidos")
    return doc.mas_activos(top, "pedidos")


@cache
def _retencion() -> Select:
    # The folded counters, corrected for the usuarios whose count has unfolded deltas.
    up = r.usuarios_pedidos
    delta = r.delta_de(up, "usuario_id", "pedidos")
    d = (
        select(delta.c.usuario_id, func.sum(delta.c.pedidos).label("d"))
        .group_by(delta.c.usuario_id)
        .subquery()
    )
    antes = func.coalesce(up.c.pedidos, 0)
    despues = antes + d.c.d

    def cruza(umbral: int) -> Any:
        return func.coalesce(
            func.sum(case((despues > umbral, 1), else_=0) - case((antes > umbral, 1), else_=0)),
            0,
        )

    def ajuste(umbral: int) -> Any:
        joined = d.outerjoin(up, up.c.usuario_id == d.c.usuario_id)
        return select(cruza(umbral)).select_from(joined).scalar_subquery()

    return select(
        func.sum(r.retencion.c.con_pedidos),
        func.sum(r.retencion.c.recurrentes),
        ajuste(0),
        ajuste(1),
    )


def retencion() -> tuple[int, int]:
    """(usuarios with orders, usuarios with more than one)."""
    con, rec, mas_con, mas_rec = db.session.execute(_retencion()).one()
    return int(con or 0) + int(mas_con), int(rec or 0) + int(mas_rec)


def usuarios(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    por_mes, por_rol = usuarios_por_mes_y_rol(ventana)
    return doc.documento_usuarios(
        generado_en, por_mes, por_rol, usuarios_mas_activos(), *retencion()
    )


# -- reporte -------------------------------------------------------------------


@cache
def _reporte() -> tuple[Select, Select, Select, Select]:
    """reporte's statements: orders per estado; orders and sales per day of the
    current month (DESDE..HASTA); total usuarios, active productos and income."""
    pd, vd = vivo(r.pedidos_dia, "dia", "pedidos"), vivo(r.ventas_dia, "dia", "total_centimos")
    pe = total_vivo(r.pedidos_dia, "estado", "pedidos")
    ur = total_vivo(r.usuarios_dia, "usuarios")
    vm = total_vivo(r.ventas_dia, "total_centimos")
    return (
        select(pe.c.estado, func.sum(pe.c.pedidos)).group_by(pe.c.estado),
        select(pd.c.dia, func.sum(pd.c.pedidos))
        .where(pd.c.dia >= DESDE, pd.c.dia <= HASTA)
        .group_by(pd.c.dia),
        select(vd.c.dia, func.sum(vd.c.total_centimos))
        .where(vd.c.dia >= DESDE, vd.c.dia <= HASTA)
        .group_by(vd.c.dia),
        select(
            select(func.coalesce(func.sum(ur.c.usuarios), 0)).scalar_subquery(),
            select(func.count(Producto.id)).where(Producto.activo.is_(True)).scalar_subquery(),
            select(func.sum(vm.c.total_centimos)).scalar_subquery(),
        ),
    )


def reporte(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    actual = MESES - 1
    # Only the current month's two boundaries matter here.
    cuts = {dia: c for dia, c in cortes(ventana).items() if actual in (c.mes_crudo, c.mes_resto)}
    por_estado_q, dias_mes_q, ventas_dias_q, totales_q = _reporte()
    por_estado = {estado: int(n) for estado, n in db.session.execute(por_estado_q)}
    mes = {"desde": ventana.inicio_mes_actual.date(), "hasta": ventana.fin.date()}
    dias_mes = db.session.execute(dias_mes_q, mes).all()
    ventas_dias = db.session.execute(ventas_dias_q, mes).all()
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
    total_usuarios, total_productos, ingresos_centimos = db.session.execute(totales_q).one()
    return doc.documento_reporte(
        generado_en,
        total_usuarios=int(total_usuarios),
        total_productos=int(total_productos),
        total_pedidos=sum(por_estado.values()),
        ingresos_totales=money(de_centimos(ingresos_centimos)),
        pedidos_mes=int(pedidos_mes.get((actual, None), [0])[0]),
        ingresos_mes=money(ingresos_mes.get((actual, None), [ZERO])[0]),
        pedidos_pendientes=por_estado.get("pendiente", 0),
        pedidos_en_proceso=sum(por_estado.get(e, 0) for e in ESTADOS_EN_PROCESO),
    )
