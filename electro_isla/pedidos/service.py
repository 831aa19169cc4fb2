"""Pedido commands and queries.

Stock is never written as an absolute value read earlier: it is taken with
`UPDATE productos SET stock = stock - :n WHERE id = :id AND stock >= :n` and a
rowcount check, and given back with `stock = stock + :n`. The database decides,
so no interleaving can oversell, on PostgreSQL or on SQLite (where FOR UPDATE
does nothing and the reads before the first write take no lock at all). Every
estado change is `UPDATE pedidos SET estado = :new WHERE id = :id AND estado =
:old`, so of two concurrent cancels only one moves the order and restocks.

On PostgreSQL the productos are also read `SELECT ... FOR UPDATE` in id order
(and the stock UPDATEs run in id order), so two orders for the same productos
queue behind each other and can never deadlock.

These UPDATEs run on the session's connection, which no ORM event sees: each
one notes what it touched for the cache (`invalidate_rows_after_commit`), so
the `producto` entries of exactly those rows are invalidated at COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask_smorest import abort
from sqlalchemy import Update, select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from electro_isla.auth.actor import Actor
from electro_isla.cache.listeners import invalidate_rows_after_commit
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import MAX_INT
from electro_isla.db_types import money, utcnow
from electro_isla.extensions import db
from electro_isla.fields import MAX_AMOUNT
from electro_isla.pagination import paginate
from electro_isla.pedidos.models import TRANSICIONES, DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

ESTADOS_FINALES = frozenset(estado for estado, siguientes in TRANSICIONES.items() if not siguientes)
PRODUCTOS = Producto.__table__
PEDIDOS = Pedido.__table__
# What the guarded Core UPDATEs write, for the cache's column dependencies
# (updated_at: the `onupdate` default Core applies, or set explicitly).
STOCK_COLUMNS = ("stock", "updated_at")


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


def _execute(stmt: Update) -> int:
    """Run a guarded UPDATE in the session's transaction; the rows it matched."""
    return db.session.connection().execute(stmt).rowcount


def _take_stock(cantidades: dict[int, int]) -> int | None:
    """Take each cantidad from its producto's stock, in id order; all or nothing.

    Returns None when done, else the id of the first producto short of stock
    (the caller rolls back what was already taken).
    """
    for producto_id in sorted(cantidades):
        n = cantidades[producto_id]
        taken = _execute(
            update(PRODUCTOS)
            .where(PRODUCTOS.c.id == producto_id, PRODUCTOS.c.stock >= n)
            .values(stock=PRODUCTOS.c.stock - n)
        )
        if taken != 1:
            return producto_id
    invalidate_rows_after_commit(db.session, "productos", cantidades, STOCK_COLUMNS)
    return None


def _give_back_stock(cantidades: dict[int, int]) -> int | None:
    """Put each producto's cantidad back, unless its stock would pass what the column
    holds (an admin raised it since): returns the first such producto's id, else None
    (the caller rolls back what was already given back)."""
    for producto_id in sorted(cantidades):
        n = cantidades[producto_id]
        given = _execute(
            update(PRODUCTOS)
            .where(PRODUCTOS.c.id == producto_id, PRODUCTOS.c.stock <= MAX_INT - n)
            .values(stock=PRODUCTOS.c.stock + n)
        )
        if given != 1:
            return producto_id
    invalidate_rows_after_commit(db.session, "productos", cantidades, STOCK_COLUMNS)
    return None


def _move_estado(pedido: Pedido, nuevo: str) -> bool:
    """Move the order from the estado it was read in to `nuevo`, unless someone did first."""
    now = utcnow()
    moved = _execute(
        update(PEDIDOS)
        .where(PEDIDOS.c.id == pedido.id, PEDIDOS.c.estado == pedido.estado)
        .values(estado=nuevo, updated_at=now)
    )
    if moved != 1:
        return False
    set_committed_value(pedido, "estado", nuevo)
    set_committed_value(pedido, "updated_at", now)
    invalidate_rows_after_commit(db.session, "pedidos", [pedido.id], ("estado", "updated_at"))
    return True


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

    wanted = {item["producto_id"]: item["cantidad"] for item in items}
    short_id = _take_stock(wanted)
    if short_id is not None:
        # Someone bought it between our read and our UPDATE (SQLite takes no read lock).
        available = db.session.connection().scalar(
            select(PRODUCTOS.c.stock).where(PRODUCTOS.c.id == short_id)
        )
        nombre = productos[short_id].nombre
        _fail(
            409,
            f"Not enough stock: {nombre} (available {available}, requested {wanted[short_id]})",
        )
    for producto in productos.values():
        db.session.expire(producto, ["stock", "updated_at"])
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
    # The order first, as DRF's get_object(): one not theirs is a 404 whatever is sent.
    pedido = get_pedido_or_404(pedido_id, actor, lock=True)
    if not actor.is_staff and set(data) - {"estado"}:
        abort(403, message="A mensajero may only change the estado of their orders.")
    nuevo = data.pop("estado", None)
    if nuevo is not None:
        anterior = pedido.estado
        if nuevo not in TRANSICIONES[anterior]:
            _fail(409, f"An order cannot go from {anterior} to {nuevo}.")
        if not _move_estado(pedido, nuevo):
            _fail(409, f"The order is no longer {anterior}: someone changed it meanwhile.")
        if nuevo == "cancelado":
            full = _give_back_stock({d.producto_id: d.cantidad for d in pedido.detalles})
            if full is not None:
                _fail(
                    409,
                    f"Cancelling would put producto {full}'s stock over {MAX_INT}: "
                    "lower its stock first.",
                )
            for producto in _productos_en_sesion(pedido):
                db.session.expire(producto, ["stock", "updated_at"])
        if nuevo == "entregado":
            pedido.fecha_entrega = utcnow()
    for key, value in data.items():
        setattr(pedido, key, value)
    return _commit(pedido)


def _productos_en_sesion(pedido: Pedido) -> list[Producto]:
    """The order's productos already loaded in this session (their stock is now stale)."""
    identity = db.session.identity_map
    keys = (db.session.identity_key(Producto, d.producto_id) for d in pedido.detalles)
    return [identity[key] for key in keys if key in identity]


def _mensajero_activo(mensajero_id: int, *, lock: bool = False) -> Usuario | None:
    stmt = select(Usuario).where(Usuario.id == mensajero_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    usuario = db.session.scalars(stmt).first()
    ok = usuario is not None and usuario.rol == "mensajero" and usuario.is_active
    return usuario if ok else None


def asignar_mensajero(pedido_id: int, actor: Actor, mensajero_id: int) -> dict[str, Any]:
    """Assign an active mensajero to an order that is not finished.

    The usuario row is locked (FOR UPDATE) so a concurrent demotion waits for
    this assignment or is seen by it; on SQLite, where that lock does nothing,
    the UPDATE itself re-checks the role, so the order is never left with a
    usuario that was not a mensajero when it was assigned.
    """
    not_mensajero = {"mensajero_id": ["Not an active usuario with rol mensajero."]}
    pedido = get_pedido_or_404(pedido_id, actor, lock=True)
    if _mensajero_activo(mensajero_id, lock=True) is None:
        _fail(422, "The usuario is not an active mensajero.", not_mensajero)
    if pedido.estado in ESTADOS_FINALES:
        _fail(409, f"An order that is {pedido.estado} cannot be assigned.")
    now = utcnow()
    still_mensajero = (
        select(Usuario.id)
        .where(Usuario.id == mensajero_id, Usuario.rol == "mensajero", Usuario.is_active)
        .exists()
    )
    assigned = _execute(
        update(PEDIDOS)
        .where(
            PEDIDOS.c.id == pedido.id,
            PEDIDOS.c.estado.not_in(sorted(ESTADOS_FINALES)),
            still_mensajero,
        )
        .values(mensajero_id=mensajero_id, updated_at=now)
    )
    if assigned != 1:
        # Changed between the read and the UPDATE: say which, from current data.
        if _mensajero_activo(mensajero_id) is None:
            _fail(422, "The usuario is not an active mensajero.", not_mensajero)
        _fail(409, "The order changed meanwhile and cannot be assigned now.")
    set_committed_value(pedido, "mensajero_id", mensajero_id)
    set_committed_value(pedido, "updated_at", now)
    invalidate_rows_after_commit(db.session, "pedidos", [pedido.id], ("mensajero_id", "updated_at"))
    return _commit(pedido)
