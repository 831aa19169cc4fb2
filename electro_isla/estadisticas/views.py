"""The admin dashboard: four cached, staff-only statistics endpoints.

With `If-None-Match` and `Prefer: wait=N` a request is held until the figures
change (live/wait.py, API.md "Live statistics").

A HIT answers with the body and ETag rendered when the value was fetched (as
product detail does, electro_isla/rendering.py): no schema dump, JSON rendering or
ETag hash per request. `@blp.response` stays for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import Schema

from electro_isla.auth.permissions import staff_required
from electro_isla.blueprint import Blueprint
from electro_isla.estadisticas import service
from electro_isla.estadisticas.schemas import (
    EstadisticasProductosSchema,
    EstadisticasUsuariosSchema,
    EstadisticasVentasSchema,
    ReporteGeneralSchema,
)
from electro_isla.live.wait import answer
from electro_isla.rendering import conditional, renderer

blp = Blueprint(
    "estadisticas",
    __name__,
    url_prefix="/api/admin/estadisticas",
    description="Dashboard statistics (staff only); months in the store's TIMEZONE",
)

SCHEMAS: dict[str, type[Schema]] = {
    "ventas": EstadisticasVentasSchema,
    "usuarios": EstadisticasUsuariosSchema,
    "productos": EstadisticasProductosSchema,
    "reporte": ReporteGeneralSchema,
}
# endpoint -> the `render` its view caches with (also used by cache-warm and the check).
RENDERERS: dict[str, Callable[[Any], Any]] = {
    name: renderer(schema()) for name, schema in SCHEMAS.items()
}
SERVICES: dict[str, Callable[..., Any]] = {
    "ventas": service.estadisticas_ventas,
    "usuarios": service.estadisticas_usuarios,
    "productos": service.estadisticas_productos,
    "reporte": service.reporte_general,
}


def rendered(endpoint: str) -> Any:
    """The endpoint's cached rendering ({etag, body}), fetched on a miss."""
    return SERVICES[endpoint](render=RENDERERS[endpoint])


@blp.route("/ventas/")
class EstadisticasVentas(MethodView):
    @conditional(blp)
    @blp.response(200, EstadisticasVentasSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> Response:
        """Sales by month, best-selling products, payment methods, mean ticket"""
        return answer("ventas", rendered)


@blp.route("/usuarios/")
class EstadisticasUsuarios(MethodView):
    @conditional(blp)
    @blp.response(200, EstadisticasUsuariosSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> Response:
        """New users by month, users by role, most active buyers, retention"""
        return answer("usuarios", rendered)


@blp.route("/productos/")
class EstadisticasProductos(MethodView):
    @conditional(blp)
    @blp.response(200, EstadisticasProductosSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> Response:
        """Active products by category, low stock, inventory value, most valuable stock"""
        return answer("productos", rendered)


@blp.route("/reporte/")
class ReporteGeneral(MethodView):
    @conditional(blp)
    @blp.response(200, ReporteGeneralSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> Response:
        """One-page summary: users, products, orders and income, this month and overall"""
        return answer("reporte", rendered)


def warm_ventas() -> Any:
    """cache-warm: the entries the views read (rendered), not the plain values."""
    return rendered("ventas")


def warm_usuarios() -> Any:
    return rendered("usuarios")


def warm_productos() -> Any:
    return rendered("productos")


def warm_reporte() -> Any:
    return rendered("reporte")
