"""Order endpoints: customers place and read their orders; staff and couriers move them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask.views import MethodView

from electro_isla.auth.permissions import (
    STAFF,
    current_actor,
    login_required,
    roles_required,
    staff_required,
)
from electro_isla.blueprint import Blueprint, looked_up_first
from electro_isla.envelope import ErrorSchema
from electro_isla.pagination import with_links
from electro_isla.pedidos import service
from electro_isla.pedidos.schemas import (
    AsignarMensajeroSchema,
    MisPedidosSchema,
    PedidoCreateSchema,
    PedidoPageSchema,
    PedidoQueryArgsSchema,
    PedidoSchema,
    PedidoUpdateSchema,
)

blp = Blueprint("pedidos", __name__, url_prefix="/api", description="Pedidos")

staff_or_mensajero = roles_required(*STAFF, "mensajero")


def documents(code: int):  # noqa: ANN201
    """Document an error outcome with the shared error envelope."""
    return blp.alt_response(code, response=HTTPStatus(code).name)


def pedido_visible(pedido_id: int) -> None:
    """404 for a pedido this actor may not see (a mensajero's others), before the body."""
    service.get_pedido_or_404(pedido_id, current_actor())


@blp.route("/pedidos/")
class Pedidos(MethodView):
    @login_required
    @blp.arguments(PedidoCreateSchema)
    @blp.response(201, PedidoSchema)
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="Invalid body, a repeated producto_id (`items`), or an unknown or"
        " inactive producto (`items.<i>`)",
    )
    @documents(409)
    def post(self, data: dict[str, Any]) -> Any:
        """Place an order

        Prices and discounts come from the database; the stock is taken atomically.
        An unknown or inactive producto is 422, not enough stock 409; either way
        nothing is written.
        """
        return service.crear_pedido(current_actor().id, data)


@blp.route("/mis-pedidos/")
class MisPedidos(MethodView):
    @login_required
    @blp.response(200, MisPedidosSchema)
    def get(self) -> dict[str, Any]:
        """List my orders, newest first"""
        return service.mis_pedidos(current_actor().id)


@blp.route("/admin/pedidos/")
class AdminPedidos(MethodView):
    @staff_or_mensajero
    @blp.arguments(PedidoQueryArgsSchema, location="query")
    @blp.response(200, PedidoPageSchema)
    @documents(404)  # a page past the last
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List orders (staff: all; mensajero: those assigned to them)"""
        page, page_size = args["page"], args["page_size"]
        count, rows = service.lista_admin(current_actor(), args.get("estado"), page, page_size)
        return with_links(count, rows, page, page_size)


@blp.route("/admin/pedidos/<int:pedido_id>/")
class AdminPedidoById(MethodView):
    @staff_or_mensajero
    @blp.response(200, PedidoSchema)
    @documents(404)
    def get(self, pedido_id: int) -> Any:
        """Read an order (staff: any; mensajero: their own)"""
        return service.get_pedido_or_404(pedido_id, current_actor())

    @staff_or_mensajero
    @looked_up_first(pedido_visible)
    @blp.arguments(PedidoUpdateSchema, required=False)
    @blp.response(200, PedidoSchema)
    @documents(404)
    @documents(409)
    def patch(self, data: dict[str, Any], pedido_id: int) -> Any:
        """Change an order or move its estado along

        pendiente→confirmado|cancelado, confirmado→en_preparacion|cancelado,
        en_preparacion→en_camino|cancelado, en_camino→entregado|cancelado; any
        other is 409. Cancelling gives the stock back; entregado sets
        fecha_entrega. A mensajero may only send `estado`, for their own orders.
        """
        return service.actualizar_pedido(pedido_id, current_actor(), data)


@blp.route("/admin/pedidos/<int:pedido_id>/asignar_mensajero/")
class AsignarMensajero(MethodView):
    @staff_required
    @looked_up_first(pedido_visible)
    @blp.arguments(AsignarMensajeroSchema)
    @blp.response(200, PedidoSchema)
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="Invalid body, or `mensajero_id` is not an active mensajero",
    )
    @documents(404)
    @documents(409)
    def post(self, data: dict[str, Any], pedido_id: int) -> Any:
        """Assign a mensajero to an order (staff)

        The usuario must be an active mensajero (else 422); a delivered or
        cancelled order cannot be assigned (409).
        """
        return service.asignar_mensajero(pedido_id, current_actor(), data["mensajero_id"])
