"""The productos statistic: the catalogue's figures, read directly.

The catalogue is small and has no history to roll up, so the endpoint, the
warmer and `flask estadisticas-check` all read these figures from here (the
check compares the endpoint's answer with them); the other three statistics
have a rollup fetch and a raw-row reference (estadisticas/rollups.py, crudo.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from electro_isla.catalogo.models import Producto
from electro_isla.db_types import ZERO, dinero, exacto, money, utcnow
from electro_isla.estadisticas.documentos import TOP
from electro_isla.extensions import db

STOCK_BAJO_MAX = 9


def _valor() -> ColumnElement[Decimal]:
    return Producto.precio * Producto.stock


def _valores_en_python(activo: ColumnElement[bool]) -> tuple[dict[str, Decimal], list[Any]]:
    """Σ precio × stock per categoria and the top TOP by it, multiplied in Decimal.

    For SQLite, whose NUMERIC is a float: 9999999999.99 × 2147483647 there is
    21474836469978525696, not ...525163.53. Each precio reads back exact (two
    decimals), so the product and the sums are exact here.
    """
    rows = db.session.execute(
        select(
            Producto.id, Producto.nombre, Producto.precio, Producto.stock, Producto.categoria
        ).where(activo)
    ).all()
    por_categoria: dict[str, Decimal] = {}
    valorados = []
    for pid, nombre, precio, stock, categoria in rows:
        valor = exacto(precio) * stock
        por_categoria[categoria] = por_categoria.get(categoria, ZERO) + valor
        valorados.append((pid, nombre, precio, stock, valor))
    valorados.sort(key=lambda r: (-r[4], r[0]))
    return por_categoria, valorados[:TOP]


def productos() -> dict[str, Any]:
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
    if db.session.get_bind().dialect.name == "postgresql":
        valor = _valor()
        rentables = db.session.execute(
            select(Producto.id, Producto.nombre, Producto.precio, Producto.stock, valor)
            .where(activo)
            .order_by(valor.desc(), Producto.id)
            .limit(TOP)
        ).all()
    else:
        valor_por_categoria, rentables = _valores_en_python(activo)
        por_categoria = [(*row[:4], valor_por_categoria[row[0]]) for row in por_categoria]
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
            sum((exacto(v) for *_, v in por_categoria), ZERO),
        ),
        "productos_mas_rentables": [
            {
                "id": pid,
                "nombre": nombre,
                "precio": dinero(precio),
                "stock": stock,
                "valor_total": dinero(valor_total),
            }
            for pid, nombre, precio, stock, valor_total in rentables
        ],
        "generado_en": generado_en,
    }
