"""Usuario schemas: what the API shows of a usuario and what each caller may change."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from electro_isla.fields import PatchBody, StrictBoolean, Timestamp, text
from electro_isla.pagination import PaginationArgsSchema
from electro_isla.search import search_param
from electro_isla.usuarios.models import ROLES


class UsuarioSchema(Schema):
    id = fields.Integer(dump_only=True)
    username = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    first_name = fields.String(dump_only=True)
    last_name = fields.String(dump_only=True)
    nombre = fields.String(dump_only=True)
    rol = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    date_joined = Timestamp(dump_only=True)
    telefono = fields.String(dump_only=True)
    direccion = fields.String(dump_only=True)


class UsuarioQueryArgsSchema(PaginationArgsSchema):
    """`?q=&rol=&activo=&page=1` (empty filters, the contract's own form) lists everyone."""

    q = search_param(100, "username, email, first_name or last_name")
    rol = fields.String(validate=validate.OneOf(ROLES))
    activo = fields.Boolean()


class UsuarioAdminUpdateSchema(PatchBody):
    """What staff may change on a usuario (username, email and password are the owner's)."""

    rol = fields.String(validate=validate.OneOf(ROLES))
    is_active = StrictBoolean()
    first_name = text(150)
    last_name = text(150)


class PerfilUpdateSchema(PatchBody):
    """What a usuario may change on their own profile (never their role)."""

    first_name = text(150)
    last_name = text(150)
    telefono = text(30)
    direccion = text(500)
