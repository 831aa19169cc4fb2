"""Catalogue endpoints: the public shop (cached) and the staff admin."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import abort

from electro_isla.auth.permissions import admin_required, staff_required
from electro_isla.blueprint import Blueprint, looked_up_first
from electro_isla.cache.commands import warmer
from electro_isla.catalogo import service
from electro_isla.catalogo.schemas import (
    ProductoAdminQueryArgsSchema,
    ProductoCreateSchema,
    ProductoPageSchema,
    ProductoQueryArgsSchema,
    ProductoSchema,
    ProductoUpdateSchema,
)
from electro_isla.json import loads
from electro_isla.pagination import PaginationArgsSchema, with_links
from electro_isla.rendering import (
    conditional,
    renderer,
    respond,
    respond_document,
    respond_page,
    row_renderer,
    splice_ok,
)

blp = Blueprint("catalogo", __name__, url_prefix="/api", description="Catálogo de productos")
render_fila = row_renderer(ProductoSchema())
_render_producto = renderer(
    ProductoSchema(), found=lambda data: data is not None and data["activo"]
)


def documents(code: int):  # noqa: ANN201
    """Document an error outcome with the shared error envelope."""
    return blp.alt_response(code, response=HTTPStatus(code).name)


@blp.route("/productos/")
class Productos(MethodView):
    @conditional(blp)
    @blp.arguments(ProductoQueryArgsSchema, location="query")
    @blp.response(200, ProductoPageSchema)
    @documents(404)  # a page past the last
    def get(self, args: dict[str, Any]) -> Response | dict[str, Any]:
        """List active productos

        Filter by `categoria`, search `q` in name and description (case-insensitive).
        """
        page, page_size = args["page"], args["page_size"]
        categoria, q = args.get("categoria"), args.get("q")
        # Rows rendered once per cached fragment; the host-specific links per request.
        rendered = service.pagina_productos(categoria, q, page, page_size, render_fila)
        links = with_links(rendered["count"], [], page, page_size)
        if splice_ok():
            return respond_page(rendered, links)
        return respond_document({**links, "results": loads(rendered["body"])})


@blp.route("/productos/<int:producto_id>/")
class ProductoById(MethodView):
    @conditional(blp)
    @blp.response(200, ProductoSchema)
    @documents(404)
    def get(self, producto_id: int) -> Response:
        """Read one active producto"""
        # The body and ETag are rendered once per cached value, not per HIT.
        rendered = service.producto_publico(producto_id, render=_render_producto)
        if not rendered:
            abort(404, message="Producto not found.")
        return respond(rendered)


@blp.route("/admin/productos/")
class AdminProductos(MethodView):
    @staff_required
    @blp.arguments(ProductoAdminQueryArgsSchema, location="query")
    @blp.response(200, ProductoPageSchema)
    @documents(404)  # a page past the last
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List every producto, inactive ones included (staff)"""
        page, page_size = args["page"], args["page_size"]
        count, rows = service.lista_admin(
            args.get("categoria"), args.get("q"), args.get("activo"), page, page_size
        )
        return with_links(count, rows, page, page_size)

    @staff_required
    @blp.arguments(ProductoCreateSchema)
    @blp.response(201, ProductoSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a producto (staff)"""
        return service.crear_producto(data)


@blp.route("/admin/productos/<int:producto_id>/")
class AdminProductoById(MethodView):
    @staff_required
    @blp.response(200, ProductoSchema)
    @documents(404)
    def get(self, producto_id: int) -> Any:
        """Read any producto (staff)"""
        return service.get_producto_or_404(producto_id)

    @staff_required
    @looked_up_first(service.get_producto_or_404)
    @blp.arguments(ProductoUpdateSchema, required=False)
    @blp.response(200, ProductoSchema)
    @documents(404)
    def patch(self, data: dict[str, Any], producto_id: int) -> Any:
        """Update some fields of a producto (staff)"""
        return service.actualizar_producto(producto_id, data)

    @admin_required
    @blp.response(204)
    @documents(404)
    @documents(409)
    def delete(self, producto_id: int) -> None:
        """Delete a producto that no order mentions (admin)

        A producto that appears in an order answers 409: deactivate it instead.
        """
        service.eliminar_producto(producto_id)


@warmer("lista_productos")
def primera_pagina_productos() -> Any:
    """cache-warm: the first page of GET /api/productos/ as an anonymous client asks for it."""
    page_size = PaginationArgsSchema().load({})["page_size"]
    return service.pagina_productos(None, None, 1, page_size, render_fila)  # what the view reads
