"""Pedido commands and queries.

Stock is taken and given back under row locks: on PostgreSQL every producto an
order touches is read `SELECT ... FOR UPDATE`, always in id order, so two
orders for the same productos queue behind each other instead of overselling,
and can never deadlock. SQLite serialises writers on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from electro_isla.auth.permissions import Actor
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import MAX_INT
from electro_isla.db_types import money, utcnow
from electro_isla.extensions import db
from electro_isla.fields import MAX_AMOUNT
from electro_isla.pagination import paginate
from electro_isla.pedidos.models import TRANSICIONES, DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

ESTADOS_FINALES = frozenset(estado for estado, siguientes in TRANSICIONES.items() if not siguientes)


def pedido_data(pedido: Pedido) -> dict[str, Any]:
    """The answer for one pedido, read from memory (see `_commit`)."""
    return {
        "id": pedido.id,
        "usuario_id": pedido.usuario_id,
        "estado": pedido.estado,
        "metodo_pago": pedido.metodo_pago,
        "total": pedido.total,
        "direccion_entrega": pedido.direccion_entrega,
        "telefono": pedido.telefono,
        "notas": pedido.notas,
        "mensajero_id": pedido.mensajero_id,
        "created_at": pedido.created_at,
        "updated_at": pedido.updated_at,
        "fecha_entrega": pedido.fecha_entrega,
        "detalles": [
            {
                "producto_id": d.producto_id,
                "producto_nombre": d.producto_nombre,
                "cantidad": d.cantidad,
                "precio_unitario": d.precio_unitario,
                "subtotal": d.subtotal,
            }
            for d in pedido.detalles
        ],
    }


def _commit(pedido: Pedido) -> dict[str, Any]:
    """Flush, take the answer, then COMMIT.

    COMMIT expires the objects; serialising them afterwards would read the
    database again, and a database lost right after COMMIT would turn a stored
    order into an error answer. The answer is taken from the flushed state instead.
    """
    db.session.flush()
    data = pedido_data(pedido)
    db.session.commit()
    return data


def _lock_productos(ids: Iterable[int]) -> dict[int, Producto]:
    """Lock the productos' rows in id order and read their current values."""
    stmt = (
        select(Producto)
        .where(Producto.id.in_(sorted(set(ids))))
        .order_by(Producto.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in db.session.scalars(stmt)}


def _fail(code: int, message: str, errors: dict[str, Any] | None = None) -> None:
    """Release the locks and what was flushed, then answer with the error.

    `errors` is keyed by input as marshmallow nests it ({"items": {"0": [...]}}); the
    error handler flattens it like request validation's, so clients read one format
    whichever layer refused the data.
    """
    db.session.rollback()
    if errors:
        abort(code, message=message, errors=errors)
    abort(code, message=message)


def crear_pedido(usuario_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Place an order: prices from the database, stock taken atomically, all or nothing."""
    items = data["items"]
    productos = _lock_productos(item["producto_id"] for item in items)

    unknown = {
        str(i): ["Unknown or inactive producto."]
        for i, item in enumerate(items)
        if not (p := productos.get(item["producto_id"])) or not p.activo
    }
    if unknown:
        _fail(422, "Some productos cannot be ordered.", {"items": unknown})

    detalles: list[DetallePedido] = []
    total = Decimal("0.00")
    for item in items:
        producto = productos[item["producto_id"]]
        precio = producto.precio_final
        subtotal = money(precio * item["cantidad"])
        total += subtotal
        detalles.append(
            DetallePedido(
                producto_id=producto.id,
                producto_nombre=producto.nombre,
                cantidad=item["cantidad"],
                precio_unitario=precio,
                subtotal=subtotal,
            )
        )
    if total > MAX_AMOUNT:
        _fail(
            422,
            "The order total is too large.",
            {"items": ["The order total is too large."]},
        )

    short = [
        f"{productos[i['producto_id']].nombre} (available {productos[i['producto_id']].stock},"
        f" requested {i['cantidad']})"
        for i in items
        if productos[i["producto_id"]].stock < i["cantidad"]
    ]
    if short:
        _fail(409, "Not enough stock: " + "; ".join(short))

    for item in items:
        productos[item["producto_id"]].stock -= item["cantidad"]
    pedido = Pedido(
        usuario_id=usuario_id,
        estado="pendiente",
        metodo_pago=data["metodo_pago"],
        total=total,
        direccion_entrega=data["direccion_entrega"],
        telefono=data["telefono"],
        notas=data.get("notas", ""),
        detalles=detalles,
    )
    db.session.add(pedido)
    return _commit(pedido)


def _with_detalles(stmt):  # noqa: ANN001, ANN202
    return stmt.options(selectinload(Pedido.detalles))


def mis_pedidos(usuario_id: int) -> dict[str, Any]:
    stmt = _with_detalles(
        select(Pedido)
        .where(Pedido.usuario_id == usuario_id)
        .order_by(Pedido.created_at.desc(), Pedido.id.desc())
    )
    pedidos = list(db.session.scalars(stmt))
    return {"count": len(pedidos), "pedidos": pedidos}


def _visible_to(stmt, actor: Actor):  # noqa: ANN001, ANN202
    """Staff see every order; a mensajero only those assigned to them."""
    return stmt if actor.is_staff else stmt.where(Pedido.mensajero_id == actor.id)


def lista_admin(
    actor: Actor, estado: str | None, page: int, page_size: int
) -> tuple[int, list[Pedido]]:
    stmt = _visible_to(select(Pedido), actor)
    if estado:
        stmt = stmt.where(Pedido.estado == estado)
    stmt = _with_detalles(stmt.order_by(Pedido.created_at.desc(), Pedido.id.desc()))
    return paginate(stmt, page, page_size)


def get_pedido_or_404(pedido_id: int, actor: Actor, *, lock: bool = False) -> Pedido:
    """The order if this actor may see it; 404 otherwise (a courier learns nothing
    about orders that are not theirs)."""
    if not 0 < pedido_id <= MAX_INT:
        abort(404, message="Pedido not found.")
    stmt = _visible_to(select(Pedido).where(Pedido.id == pedido_id), actor)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    pedido = db.session.scalar(stmt)
    if pedido is None:
        _fail(404, "Pedido not found.")
    return pedido


def actualizar_pedido(pedido_id: int, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Change an order's fields and move its estado along TRANSICIONES.

    The pedido row is locked first so two concurrent changes (say, two cancels)
    cannot both apply and give the stock back twice.
    """
    if not actor.is_staff and set(data) - {"estado"}:
        abort(403, message="A mensajero may only change the estado of their orders.")
    pedido = get_pedido_or_404(pedido_id, actor, lock=True)
    nuevo = data.pop("estado", None)
    if nuevo is not None:
        if nuevo not in TRANSICIONES[pedido.estado]:
            _fail(409, f"An order cannot go from {pedido.estado} to {nuevo}.")
        if nuevo == "cancelado":
            productos = _lock_productos(d.producto_id for d in pedido.detalles)
            for detalle in pedido.detalles:
                productos[detalle.producto_id].stock += detalle.cantidad
        if nuevo == "entregado":
            pedido.fecha_entrega = utcnow()
        pedido.estado = nuevo
    for key, value in data.items():
        setattr(pedido, key, value)
    return _commit(pedido)


def asignar_mensajero(pedido_id: int, actor: Actor, mensajero_id: int) -> dict[str, Any]:
    pedido = get_pedido_or_404(pedido_id, actor, lock=True)
    mensajero = db.session.get(Usuario, mensajero_id)
    if mensajero is None or mensajero.rol != "mensajero" or not mensajero.is_active:
        _fail(
            422,
            "The usuario is not an active mensajero.",
            {"mensajero_id": ["Not an active usuario with rol mensajero."]},
        )
    if pedido.estado in ESTADOS_FINALES:
        _fail(409, f"An order that is {pedido.estado} cannot be assigned.")
    pedido.mensajero_id = mensajero_id
    return _commit(pedido)
