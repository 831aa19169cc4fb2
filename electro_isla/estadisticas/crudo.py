"""The statistics computed from the raw rows: the reference the rollups must equal.

This is `flask estadisticas-check`'s independent reference (and the benchmark's
"before"), and only that: the endpoints never read it. Every figure is computed by the database (`GROUP BY`, `SUM`, `COUNT`) over
pedidos, detalles_pedido and usuarios, with months bucketed in SQL by a `CASE`
over `created_at`/`date_joined` ranges. Its cost grows with the history, so the
endpoints read the rollups instead (estadisticas/rollups.py). The productos
figures have no second computation: they read the catalogue directly
(estadisticas/inventario.py), for the endpoint and the check alike.

Money is summed as `NUMERIC` and rounded to cents with `money()`; means are
divided in `Decimal`, never in float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, case, func, null, select

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import ZERO, dinero, exacto, utcnow
from electro_isla.estadisticas import documentos as doc
from electro_isla.estadisticas.inventario import productos
from electro_isla.estadisticas.ventana import Meses
from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_EN_PROCESO, ESTADOS_VENTA, DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario


def _bucket(column: Any, ventana: Meses) -> ColumnElement[int | None]:
    """Index (0 = oldest) of the window month `column` falls in; NULL outside the window."""
    return case(
        (column < ventana.limites[0], null()),
        *((column < limite, i) for i, limite in enumerate(ventana.limites[1:])),
        else_=null(),
    )


def _en_ventana(column: Any, ventana: Meses) -> ColumnElement[bool]:
    return (column >= ventana.limites[0]) & (column < ventana.fin)


def _es_venta() -> ColumnElement[bool]:
    return Pedido.estado.in_(ESTADOS_VENTA)


def _memoria_para_agregar() -> None:
    """Give this transaction's hash joins and aggregates room to stay in memory.

    PostgreSQL's default work_mem (4 MB) makes the joins over every sale spill to
    disk beyond a few hundred thousand orders, which turns linear growth into
    worse. SET LOCAL ends with the request's transaction.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        work_mem = current_app.config.get("ESTADISTICAS_WORK_MEM", "64MB")
        db.session.execute(select(func.set_config("work_mem", work_mem, True)))


# -- ventas --------------------------------------------------------------------


def ventas_por_mes_y_metodo(ventana: Meses) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`ventas_por_mes` and `metodos_pago` from one scan of the sales.

    Grouped by (window month or NULL, metodo_pago): at most 13 × 3 groups, which
    Python then adds up exactly, so the orders table is read once, not twice.
    """
    inner = (
        select(
            _bucket(Pedido.created_at, ventana).label("mes"),
            Pedido.metodo_pago,
            Pedido.total,
        )
        .where(_es_venta())
        .subquery()
    )
    rows = db.session.execute(
        select(inner.c.mes, inner.c.metodo_pago, func.count(), func.sum(inner.c.total)).group_by(
            inner.c.mes, inner.c.metodo_pago
        )
    ).all()
    por_mes: dict[int, list[Any]] = {}
    por_metodo: dict[str, list[Any]] = {}
    for mes, metodo, n, total in rows:
        suma = exacto(total)
        for bucket, key in ((por_mes, mes), (por_metodo, metodo)):
            if key is not None:
                acc = bucket.setdefault(key, [0, ZERO])
                acc[0] += n
                acc[1] += suma
    return doc.ventas_por_mes(ventana, por_mes), doc.metodos_pago(por_metodo)


def productos_mas_vendidos() -> list[dict[str, Any]]:
    # Ranked on the integer key alone; documentos.mas_vendidos names the winners.
    cantidad = func.sum(DetallePedido.cantidad).label("cantidad")
    top = (
        select(
            DetallePedido.producto_id,
            cantidad,
            func.sum(DetallePedido.subtotal).label("ingresos"),
        )
        .join(Pedido, Pedido.id == DetallePedido.pedido_id)
        .where(_es_venta())
        .group_by(DetallePedido.producto_id)
        .order_by(cantidad.desc(), DetallePedido.producto_id)
        .limit(doc.TOP)
        .subquery()
    )
    return doc.mas_vendidos(top, "ingresos", exacto)


def ventas(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    _memoria_para_agregar()
    por_mes, metodos = ventas_por_mes_y_metodo(ventana)
    return doc.documento_ventas(generado_en, por_mes, metodos, productos_mas_vendidos())


# -- usuarios ------------------------------------------------------------------


def usuarios_por_mes(ventana: Meses) -> list[dict[str, Any]]:
    inner = (
        select(_bucket(Usuario.date_joined, ventana).label("mes"))
        .where(_en_ventana(Usuario.date_joined, ventana))
        .subquery()
    )
    rows = {
        mes: n
        for mes, n in db.session.execute(select(inner.c.mes, func.count()).group_by(inner.c.mes))
    }
    return [
        {"mes": etiqueta, "nuevos": rows.get(i, 0)} for i, etiqueta in enumerate(ventana.etiquetas)
    ]


def usuarios_por_rol() -> list[dict[str, Any]]:
    rows = {
        rol: n
        for rol, n in db.session.execute(
            select(Usuario.rol, func.count(Usuario.id)).group_by(Usuario.rol)
        )
    }
    return [{"rol": rol, "count": rows.get(rol, 0)} for rol in ROLES]


def usuarios_mas_activos() -> list[dict[str, Any]]:
    # count(*) over the usuario_id index alone: no heap visit per order.
    pedidos_count = func.count().label("pedidos_count")
    top = (
        select(Pedido.usuario_id, pedidos_count)
        .group_by(Pedido.usuario_id)
        .order_by(pedidos_count.desc(), Pedido.usuario_id)
        .limit(doc.TOP)
        .subquery()
    )
    return doc.mas_activos(top, "pedidos_count")


def retencion() -> tuple[int, int]:
    """(usuarios with orders, usuarios with more than one)."""
    por_usuario = (
        select(Pedido.usuario_id, func.count().label("n")).group_by(Pedido.usuario_id).subquery()
    )
    total, recurrentes = db.session.execute(
        select(
            func.count(), func.coalesce(func.sum(case((por_usuario.c.n > 1, 1), else_=0)), 0)
        ).select_from(por_usuario)
    ).one()
    return int(total), int(recurrentes)


def usuarios(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    _memoria_para_agregar()
    return doc.documento_usuarios(
        generado_en,
        usuarios_por_mes(ventana),
        usuarios_por_rol(),
        usuarios_mas_activos(),
        *retencion(),
    )


# -- reporte -------------------------------------------------------------------


def _cuenta(condicion: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condicion, 1), else_=0)), 0)


def _suma_total(condicion: ColumnElement[bool]) -> ColumnElement[Decimal]:
    return func.sum(case((condicion, Pedido.total), else_=None))


def reporte(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    en_mes = (Pedido.created_at >= ventana.inicio_mes_actual) & (Pedido.created_at < ventana.fin)
    total_usuarios = select(func.count(Usuario.id)).scalar_subquery()
    total_productos = (
        select(func.count(Producto.id)).where(Producto.activo.is_(True)).scalar_subquery()
    )
    row = db.session.execute(
        select(
            total_usuarios,
            total_productos,
            func.count(Pedido.id),
            _suma_total(_es_venta()),
            _cuenta(en_mes),
            _suma_total(_es_venta() & en_mes),
            _cuenta(Pedido.estado == "pendiente"),
            _cuenta(Pedido.estado.in_(ESTADOS_EN_PROCESO)),
        ).select_from(Pedido)
    ).one()
    usuarios, activos, pedidos, ingresos, pedidos_mes, ingresos_mes, pendientes, proceso = row
    return doc.documento_reporte(
        generado_en,
        total_usuarios=usuarios,
        total_productos=activos,
        total_pedidos=pedidos,
        ingresos_totales=dinero(ingresos),
        pedidos_mes=int(pedidos_mes),
        ingresos_mes=dinero(ingresos_mes),
        pedidos_pendientes=int(pendientes),
        pedidos_en_proceso=int(proceso),
    )


def todas(ventana: Meses) -> dict[str, dict[str, Any]]:
    """Every endpoint's figures from the raw rows, keyed like the URLs."""
    return {
        "ventas": ventas(ventana),
        "usuarios": usuarios(ventana),
        "productos": productos(),
        "reporte": reporte(ventana),
    }
