"""The statistics documents, built from figures whichever source computed them.

The rollups (estadisticas/rollups.py) and the raw rows (estadisticas/crudo.py)
compute the same numbers in two independent ways; the shape of what they
return, and the names fetched for the ten winners of a ranking, are written
once, here, so that `flask estadisticas-check` compares figures, not two hand
copies of a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Subquery, select

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import ZERO, money
from electro_isla.estadisticas.ventana import Meses
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario

TOP = 10

Documento = dict[str, Any]


def ventas_por_mes(ventana: Meses, por_mes: Mapping[int, tuple[int, Decimal]]) -> list[Documento]:
    """One entry per window month (oldest first) from {month index: (sales, Σ total)}."""
    return [
        {
            "mes": etiqueta,
            "total": money(por_mes.get(i, (0, ZERO))[1]),
            "pedidos": por_mes.get(i, (0, ZERO))[0],
        }
        for i, etiqueta in enumerate(ventana.etiquetas)
    ]


def metodos_pago(por_metodo: Mapping[str, tuple[int, Decimal]]) -> list[Documento]:
    """The methods with sales, most used first, from {metodo: (sales, Σ total)}."""
    return [
        {"metodo_pago": metodo, "count": n, "total": money(total)}
        for metodo, (n, total) in sorted(por_metodo.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if n > 0
    ]


def mas_vendidos(top: Subquery, ingresos: str, exacto: Callable[[Any], Decimal]) -> list[Documento]:
    """The ranked products of `top` (producto_id, cantidad, `ingresos`) with their names.

    Ranking on the integer key alone and naming only the winners: grouping every
    sold line by (id, nombre, categoria) would hash strings per row.
    """
    stmt = (
        select(
            top.c.producto_id, Producto.nombre, Producto.categoria, top.c.cantidad, top.c[ingresos]
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
            "ingresos": money(exacto(suma)),
        }
        for producto_id, nombre, categoria, cantidad, suma in db.session.execute(stmt)
    ]


def mas_activos(top: Subquery, pedidos: str) -> list[Documento]:
    """The ranked buyers of `top` (usuario_id, `pedidos`) with their names."""
    stmt = (
        select(Usuario.id, Usuario.username, Usuario.first_name, Usuario.last_name, top.c[pedidos])
        .join(top, top.c.usuario_id == Usuario.id)
        .order_by(top.c[pedidos].desc(), Usuario.id)
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


def documento_ventas(
    generado_en: datetime,
    por_mes: list[Documento],
    metodos: list[Documento],
    mas_vendidos: list[Documento],
) -> Documento:
    """The ventas document. Every sale has exactly one method, so the methods'
    sums are all sales' sums."""
    ventas = sum(m["count"] for m in metodos)
    total = sum((m["total"] for m in metodos), ZERO)
    return {
        "ventas_por_mes": por_mes,
        "productos_mas_vendidos": mas_vendidos,
        "metodos_pago": metodos,
        "ticket_promedio": money(total / ventas) if ventas else money(ZERO),
        "generado_en": generado_en,
    }


def documento_usuarios(
    generado_en: datetime,
    por_mes: list[Documento],
    por_rol: list[Documento],
    activos: list[Documento],
    con_pedidos: int,
    recurrentes: int,
) -> Documento:
    """The usuarios document; the retention rate is divided in Decimal."""
    tasa = money(Decimal(100 * recurrentes) / con_pedidos) if con_pedidos else money(ZERO)
    return {
        "usuarios_por_mes": por_mes,
        "usuarios_por_rol": por_rol,
        "usuarios_mas_activos": activos,
        "total_usuarios": con_pedidos,
        "usuarios_recurrentes": recurrentes,
        "tasa_retencion": tasa,
        "generado_en": generado_en,
    }


def documento_reporte(generado_en: datetime, **resumen: Any) -> Documento:
    """The one-page summary; every figure named as the schema names it."""
    return {"resumen": resumen, "fecha_generacion": generado_en, "generado_en": generado_en}
