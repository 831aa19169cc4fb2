"""Usuarios: staff administration (/api/admin/users/) and the caller's own profile (/api/perfil/)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from electro_isla.auth.permissions import current_actor, login_required, staff_required
from electro_isla.blueprint import Blueprint, looked_up_first
from electro_isla.pagination import page_schema, with_links
from electro_isla.rendering import conditional, respond_document
from electro_isla.usuarios import service
from electro_isla.usuarios.schemas import (
    PerfilUpdateSchema,
    UsuarioAdminUpdateSchema,
    UsuarioQueryArgsSchema,
    UsuarioSchema,
)

blp = Blueprint("usuarios", __name__, url_prefix="/api", description="usuarios")

UsuarioPageSchema = page_schema(UsuarioSchema)
BEARER = [{"bearerAuth": []}]
PERFIL = UsuarioSchema()


def usuario_editable(usuario_id: int) -> None:
    """404 for no such usuario, 403 for an admin a trabajador names: before the body."""
    service.usuario_editable_or_404(current_actor(), usuario_id)


@blp.route("/admin/users/")
class Usuarios(MethodView):
    @staff_required
    @blp.doc(security=BEARER)
    @blp.arguments(UsuarioQueryArgsSchema, location="query")
    @blp.response(200, UsuarioPageSchema)
    @blp.alt_response(401, schema="Error", description="Not authenticated")
    @blp.alt_response(403, schema="Error", description="Not staff")
    @blp.alt_response(404, schema="Error", description="A page past the last")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List usuarios (staff), filtered by q, rol and activo."""
        page, page_size = args.pop("page"), args.pop("page_size")
        count, usuarios = service.listar_usuarios(page, page_size, **args)
        return with_links(count, usuarios, page, page_size)


@blp.route("/admin/users/<int:usuario_id>/")
class UsuarioById(MethodView):
    @staff_required
    @blp.doc(security=BEARER)
    @looked_up_first(usuario_editable)
    @blp.arguments(UsuarioAdminUpdateSchema, required=False)
    @blp.response(200, UsuarioSchema)
    @blp.alt_response(401, schema="Error", description="Not authenticated")
    @blp.alt_response(
        403,
        schema="Error",
        description="Not staff, a trabajador touching an admin, or one's own role or activation",
    )
    @blp.alt_response(404, schema="Error", description="Unknown usuario")
    @blp.alt_response(409, schema="Error", description="It would leave no active admin")
    def patch(self, cambios: dict[str, Any], usuario_id: int):
        """Change a usuario's role, activation or name (staff)."""
        return service.actualizar_usuario(current_actor(), usuario_id, cambios)


@blp.route("/perfil/")
class Perfil(MethodView):
    @login_required
    @blp.doc(security=BEARER)
    @conditional(blp)
    @blp.response(200, UsuarioSchema)
    @blp.alt_response(401, schema="Error", description="Not authenticated")
    def get(self) -> Response:
        """The caller's own profile (cached; ETag and 304 supported)."""
        return respond_document(PERFIL.dump(service.obtener_perfil(current_actor().id)))

    @login_required
    @blp.doc(security=BEARER)
    @blp.arguments(PerfilUpdateSchema, required=False)
    @blp.response(200, UsuarioSchema)
    @blp.alt_response(401, schema="Error", description="Not authenticated")
    def patch(self, cambios: dict[str, Any]):
        """Change the caller's own name, telephone or address."""
        return service.actualizar_perfil(current_actor().id, cambios)
