"""The admin dashboard: four cached, staff-only statistics endpoints."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from electro_isla.auth.permissions import staff_required
from electro_isla.estadisticas import service
from electro_isla.estadisticas.schemas import (
    EstadisticasProductosSchema,
    EstadisticasUsuariosSchema,
    EstadisticasVentasSchema,
    ReporteGeneralSchema,
)

blp = Blueprint(
    "estadisticas",
    __name__,
    url_prefix="/api/admin/estadisticas",
    description="Dashboard statistics (staff only); months in the store's TIMEZONE",
)


@blp.route("/ventas/")
class EstadisticasVentas(MethodView):
    @blp.etag
    @blp.response(200, EstadisticasVentasSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> dict[str, Any]:
        """Sales by month, best-selling products, payment methods, mean ticket"""
        return service.estadisticas_ventas()


@blp.route("/usuarios/")
class EstadisticasUsuarios(MethodView):
    @blp.etag
    @blp.response(200, EstadisticasUsuariosSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> dict[str, Any]:
        """New users by month, users by role, most active buyers, retention"""
        return service.estadisticas_usuarios()


@blp.route("/productos/")
class EstadisticasProductos(MethodView):
    @blp.etag
    @blp.response(200, EstadisticasProductosSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> dict[str, Any]:
        """Active products by category, low stock, inventory value, most valuable stock"""
        return service.estadisticas_productos()


@blp.route("/reporte/")
class ReporteGeneral(MethodView):
    @blp.etag
    @blp.response(200, ReporteGeneralSchema)
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @staff_required
    def get(self) -> dict[str, Any]:
        """One-page summary: users, products, orders and income, this month and overall"""
        return service.reporte_general()
