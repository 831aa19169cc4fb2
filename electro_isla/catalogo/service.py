"""Producto queries and commands; the public reads go through the cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask_smorest import abort
from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import MAX_INT, ProductoSchema
from electro_isla.extensions import db
from electro_isla.pagination import paginate
from electro_isla.pedidos.models import DetallePedido
from electro_isla.search import matching

PRODUCTO = ProductoSchema()


def producto_data(producto: Producto) -> dict[str, Any]:
    """The JSON-able shape cached and answered for one producto: ProductoSchema's dump."""
    return PRODUCTO.dump(producto)


def _filtered(
    stmt: Select, categoria: str | None, q: str | None, activo: bool | None = None
) -> Select:
    if categoria:
        stmt = stmt.where(Producto.categoria == categoria)
    found = matching((Producto.nombre, Producto.descripcion), q)
    if found is not None:
        stmt = stmt.where(found)
    if activo is not None:
        stmt = stmt.where(Producto.activo.is_(activo))
    return stmt


def pagina_productos(
    categoria: str | None,
    q: str | None,
    page: int,
    page_size: int,
    render_row: Callable[[dict[str, Any]], dict[str, str]],
) -> dict[str, Any]:
    """One page of active productos as {count, body, tagged}, composed from cached rows.

    The page's ids and count depend only on the membership columns the filters
    and the order read; each row's rendered fragment is cached apart, so a
    stock or price change refills one fragment and keeps every page's id list.
    """

    def fetch_ids() -> dict[str, Any]:
        stmt = _filtered(select(Producto.id), categoria, q, activo=True).order_by(Producto.id)
        count, ids = paginate(stmt, page, page_size)
        return {"count": count, "ids": ids}

    params = {"categoria": categoria, "q": q, "page": page, "page_size": page_size}
    return cache_manager.pages.get(
        "lista_productos",
        params,
        fetch_ids,
        filas_productos,
        render_row,
        shown=lambda row: bool(row["activo"]),
    )


def filas_productos(ids: Sequence[int]) -> list[dict[str, Any]]:
    """The given productos' documents, in one query (a page's missing fragments)."""
    if not ids:
        return []
    rows = db.session.scalars(select(Producto).where(Producto.id.in_(list(ids))))
    return [producto_data(p) for p in rows]


def producto_publico(
    producto_id: int, render: Callable[[dict[str, Any] | None], Any] | None = None
) -> Any:
    """The cached producto (active or not: the caller decides), None when absent.

    With `render`, the cached value is render(producto or None) instead (see
    CacheManager.get): the view's already-rendered answer.
    """
    if not 0 < producto_id <= MAX_INT:
        return None if render is None else render(None)

    def fetch() -> dict[str, Any] | None:
        producto = db.session.get(Producto, producto_id)
        return producto_data(producto) if producto is not None else None

    return cache_manager.get("producto", fetch, row=producto_id, render=render)


def lista_admin(
    categoria: str | None, q: str | None, activo: bool | None, page: int, page_size: int
) -> tuple[int, list[Producto]]:
    stmt = _filtered(select(Producto), categoria, q, activo).order_by(Producto.id)
    return paginate(stmt, page, page_size)


def get_producto_or_404(producto_id: int) -> Producto:
    producto = db.session.get(Producto, producto_id) if 0 < producto_id <= MAX_INT else None
    if producto is None:
        abort(404, message="Producto not found.")
    return producto


def _commit(producto: Producto) -> dict[str, Any]:
    """Take the answer from the flushed row, then COMMIT (no re-read after it)."""
    db.session.flush()
    data = producto_data(producto)
    db.session.commit()
    return data


def crear_producto(data: dict[str, Any]) -> dict[str, Any]:
    producto = Producto(**data)
    db.session.add(producto)
    return _commit(producto)


def actualizar_producto(producto_id: int, data: dict[str, Any]) -> dict[str, Any]:
    producto = get_producto_or_404(producto_id)
    for key, value in data.items():
        setattr(producto, key, value)
    try:
        return _commit(producto)
    except StaleDataError:
        # A DELETE committed between the read and the UPDATE (which matched no row).
        db.session.rollback()
        abort(404, message="Producto not found.")


def eliminar_producto(producto_id: int) -> None:
    """Delete a producto no order mentions; orders keep their history, so 409 otherwise."""
    producto = get_producto_or_404(producto_id)
    in_orders = db.session.scalar(select(exists().where(DetallePedido.producto_id == producto_id)))
    if in_orders:
        abort(409, message="This producto appears in orders; deactivate it instead.")
    db.session.delete(producto)
    try:
        db.session.commit()
    except IntegrityError:
        # An order took it between the check and the delete.
        db.session.rollback()
        abort(409, message="This producto appears in orders; deactivate it instead.")
