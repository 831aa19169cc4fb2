"""Dashboard statistics: SQL aggregates, cached, a fixed number of queries each.

Every figure is computed by the database (`GROUP BY`, `SUM`, `COUNT`), never by
looping over rows in Python, so the number of statements per endpoint does not
grow with the data. Months are calendar months in the store's time zone: their
boundaries are computed here (in `TIMEZONE`, then converted to UTC) and the
rows are bucketed in SQL with a `CASE` over `created_at`/`date_joined` ranges,
which reads the same on PostgreSQL and SQLite and can use the column's index.

Money is summed as `NUMERIC` and rounded to cents with `money()` before it is
cached; means are divided in `Decimal`, never in float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, case, func, null, select

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.db_types import money, utcnow
from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_EN_PROCESO, ESTADOS_VENTA, DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario

MESES = 12
TOP = 10
STOCK_BAJO_MAX = 9
ZERO = Decimal("0")


@dataclass(frozen=True)
class Meses:
    """The 12-month window: labels oldest first and 13 UTC boundaries.

    `limites[i]` is the first instant of month `etiquetas[i]` in the store's
    time zone; `limites[12]` is the first instant of next month.
    """

    etiquetas: tuple[str, ...]
    limites: tuple[datetime, ...]

    @property
    def actual(self) -> str:
        return self.etiquetas[-1]

    @property
    def inicio_mes_actual(self) -> datetime:
        return self.limites[-2]

    @property
    def fin(self) -> datetime:
        return self.limites[-1]


def meses(now: datetime | None = None, zona: str | None = None) -> Meses:
    """The current calendar month in `zona` and the 11 before it."""
    tz = ZoneInfo(zona or current_app.config["TIMEZONE"])
    local = (now or utcnow()).astimezone(tz)
    index = local.year * 12 + local.month - 1
    starts = [divmod(index - k, 12) for k in range(MESES - 1, -2, -1)]
    # fold=0: the first local midnight of the 1st when a DST change repeats it.
    limites = tuple(datetime(y, m + 1, 1, tzinfo=tz).astimezone(UTC) for y, m in starts)
    etiquetas = tuple(f"{y:04d}-{m + 1:02d}" for y, m in starts[:-1])
    return Meses(etiquetas, limites)


def _bucket(column: Any, ventana: Meses) -> ColumnElement[int | None]:
    """Index (0 = oldest) of the window month `column` falls in; NULL outside the window."""
    return case(
        (column < ventana.limites[0], null()),
        *((column < limite, i) for i, limite in enumerate(ventana.limites[1:])),
        else_=null(),
    )


def _en_ventana(column: Any, ventana: Meses) -> ColumnElement[bool]:
    return (column >= ventana.limites[0]) & (column < ventana.fin)


def _exacto(value: Decimal | float | int | None) -> Decimal:
    """A SUM as Decimal; SQL's NULL for no rows is 0."""
    return ZERO if value is None else Decimal(str(value))


def _dinero(value: Decimal | float | int | None) -> Decimal:
    """An exact SUM rounded to cents."""
    return money(_exacto(value))


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


def _params(ventana: Meses) -> dict[str, str]:
    # The window moves with the calendar: a new month must never reuse last month's entry.
    return {"mes": ventana.actual}


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
        exacto = _exacto(total)
        for bucket, key in ((por_mes, mes), (por_metodo, metodo)):
            if key is not None:
                acc = bucket.setdefault(key, [0, ZERO])
                acc[0] += n
                acc[1] += exacto
    meses_ = [
        {
            "mes": etiqueta,
            "total": money(por_mes.get(i, (0, ZERO))[1]),
            "pedidos": por_mes.get(i, (0, ZERO))[0],
        }
        for i, etiqueta in enumerate(ventana.etiquetas)
    ]
    metodos = [
        {"metodo_pago": metodo, "count": n, "total": money(total)}
        for metodo, (n, total) in sorted(por_metodo.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    return meses_, metodos


def productos_mas_vendidos() -> list[dict[str, Any]]:
    # Rank on the integer key alone, then fetch names for the ten winners: grouping
    # every sold line by (id, nombre, categoria) would hash strings per row.
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
        .limit(TOP)
        .subquery()
    )
    stmt = (
        select(
            top.c.producto_id, Producto.nombre, Producto.categoria, top.c.cantidad, top.c.ingresos
        )
        .join(Producto, Producto.id == top.c.producto_id)
        .order_by(top.c.cantidad.desc(), top.c.producto_id)
    )
    return [
        {
            "producto_id": producto_id,
            "producto__nombre": nombre,
            "producto__categoria": categoria,
            "cantidad_vendida": int(vendidos),
            "ingresos": _dinero(ingresos),
        }
        for producto_id, nombre, categoria, vendidos, ingresos in db.session.execute(stmt)
    ]


def _ventas(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    _memoria_para_agregar()
    por_mes, metodos = ventas_por_mes_y_metodo(ventana)
    # Every sale has exactly one method, so the methods' sums are all sales' sums.
    ventas = sum(m["count"] for m in metodos)
    total = sum((m["total"] for m in metodos), ZERO)
    return {
        "ventas_por_mes": por_mes,
        "productos_mas_vendidos": productos_mas_vendidos(),
        "metodos_pago": metodos,
        "ticket_promedio": money(total / ventas) if ventas else money(ZERO),
        "generado_en": generado_en,
    }


def estadisticas_ventas() -> dict[str, Any]:
    ventana = meses()
    return cache_manager.get(
        "estadisticas_ventas", lambda: _ventas(ventana), params=_params(ventana)
    )


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
        .limit(TOP)
        .subquery()
    )
    stmt = (
        select(
            Usuario.id, Usuario.username, Usuario.first_name, Usuario.last_name, top.c.pedidos_count
        )
        .join(top, top.c.usuario_id == Usuario.id)
        .order_by(top.c.pedidos_count.desc(), Usuario.id)
    )
    return [
        {
            "id": uid,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "pedidos_count": n,
        }
        for uid, username, first_name, last_name, n in db.session.execute(stmt)
    ]


def retencion() -> dict[str, Any]:
    por_usuario = (
        select(Pedido.usuario_id, func.count().label("n")).group_by(Pedido.usuario_id).subquery()
    )
    total, recurrentes = db.session.execute(
        select(
            func.count(), func.coalesce(func.sum(case((por_usuario.c.n > 1, 1), else_=0)), 0)
        ).select_from(por_usuario)
    ).one()
    tasa = money(Decimal(100 * recurrentes) / total) if total else money(ZERO)
    return {
        "total_usuarios": total,
        "usuarios_recurrentes": int(recurrentes),
        "tasa_retencion": tasa,
    }


def _usuarios(ventana: Meses) -> dict[str, Any]:
    generado_en = utcnow()
    _memoria_para_agregar()
    return {
        "usuarios_por_mes": usuarios_por_mes(ventana),
        "usuarios_por_rol": usuarios_por_rol(),
        "usuarios_mas_activos": usuarios_mas_activos(),
        **retencion(),
        "generado_en": generado_en,
    }


def estadisticas_usuarios() -> dict[str, Any]:
    ventana = meses()
    return cache_manager.get(
        "estadisticas_usuarios", lambda: _usuarios(ventana), params=_params(ventana)
    )


# -- productos -----------------------------------------------------------------


def _valor() -> ColumnElement[Decimal]:
    return Producto.precio * Producto.stock


def _productos() -> dict[str, Any]:
    generado_en = utcnow()
    activo = Producto.activo.is_(True)
    por_categoria = db.session.execute(
        select(
            Producto.categoria,
            func.count(Producto.id),
            func.sum(Producto.stock),
            func.sum(case((Producto.stock == 0, 1), else_=0)),
            func.sum(_valor()),
        )
        .where(activo)
        .group_by(Producto.categoria)
        .order_by(Producto.categoria)
    ).all()
    stock_bajo = db.session.execute(
        select(Producto.id, Producto.nombre, Producto.stock, Producto.categoria)
        .where(activo, Producto.stock.between(1, STOCK_BAJO_MAX))
        .order_by(Producto.stock, Producto.id)
    ).all()
    valor = _valor()
    rentables = db.session.execute(
        select(Producto.id, Producto.nombre, Producto.precio, Producto.stock, valor)
        .where(activo)
        .order_by(valor.desc(), Producto.id)
        .limit(TOP)
    ).all()
    return {
        "productos_por_categoria": [
            {"categoria": categoria, "count": n, "stock_total": int(stock)}
            for categoria, n, stock, _sin, _valor_cat in por_categoria
        ],
        "stock_bajo": [
            {"id": pid, "nombre": nombre, "stock": stock, "categoria": categoria}
            for pid, nombre, stock, categoria in stock_bajo
        ],
        "productos_sin_stock": sum(int(sin) for *_, sin, _v in por_categoria),
        # Per-category sums are exact NUMERIC; adding them in Decimal stays exact.
        "valor_inventario": money(
            sum((_exacto(v) for *_, v in por_categoria), ZERO),
        ),
        "productos_mas_rentables": [
            {
                "id": pid,
                "nombre": nombre,
                "precio": _dinero(precio),
                "stock": stock,
                "valor_total": _dinero(valor_total),
            }
            for pid, nombre, precio, stock, valor_total in rentables
        ],
        "generado_en": generado_en,
    }


def estadisticas_productos() -> dict[str, Any]:
    return cache_manager.get("estadisticas_productos", _productos)


# -- reporte -------------------------------------------------------------------


def _cuenta(condicion: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condicion, 1), else_=0)), 0)


def _suma_total(condicion: ColumnElement[bool]) -> ColumnElement[Decimal]:
    return func.sum(case((condicion, Pedido.total), else_=None))


def _reporte(ventana: Meses) -> dict[str, Any]:
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
    usuarios, productos, pedidos, ingresos, pedidos_mes, ingresos_mes, pendientes, proceso = row
    return {
        "resumen": {
            "total_usuarios": usuarios,
            "total_productos": productos,
            "total_pedidos": pedidos,
            "ingresos_totales": _dinero(ingresos),
            "pedidos_mes": int(pedidos_mes),
            "ingresos_mes": _dinero(ingresos_mes),
            "pedidos_pendientes": int(pendientes),
            "pedidos_en_proceso": int(proceso),
        },
        "fecha_generacion": generado_en,
        "generado_en": generado_en,
    }


def reporte_general() -> dict[str, Any]:
    ventana = meses()
    return cache_manager.get("reporte_general", lambda: _reporte(ventana), params=_params(ventana))
