"""Producto schemas: what the catalogue accepts and what it answers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from electro_isla.catalogo.models import CATEGORIAS
from electro_isla.fields import Money, PatchBody, Timestamp, strict_bool, strict_int, text
from electro_isla.pagination import PaginationArgsSchema, page_schema
from electro_isla.search import search_param

# Largest value the INTEGER columns hold: past it the database would fail,
# so the request fails validation instead (Money bounds NUMERIC(12, 2) itself).
MAX_INT = 2**31 - 1
NOT_BLANK = "Not blank: at least one character other than spaces (else 422)."
# Where a shop front puts the picture: nothing, an http(s) URL or a path from the
# site's root; never `javascript:` or `data:` (DRF's URLField refuses them too),
# and no path that a browser reads as another host (`//host/x`, `/\host/x`).
# One regular expression, checked here and published as the field's `pattern`
# (no \s: Python's and JSON Schema's disagree on \x1c-\x1f).
IMAGEN_URL = (
    r"(?:/(?:[^\u0000-\u0020/\\][^\u0000-\u0020]*)?"
    r"|[Hh][Tt][Tt][Pp][Ss]?://[^\u0000-\u0020/?#]+[^\u0000-\u0020]*)?"
)
IMAGEN_URL_FIELD = {
    "description": "Empty, an http(s) URL or a path from the site's root: one / then"
    " neither / nor \\ (`//host/x` is another site).",
    "pattern": f"^{IMAGEN_URL}$",
}


def positive_money(**kwargs: Any) -> Money:
    return Money(validate=validate.Range(min=Decimal("0"), min_inclusive=False), **kwargs)


def id_field(**kwargs: Any) -> fields.Integer:
    return strict_int(validate=validate.Range(min=1, max=MAX_INT), **kwargs)


class ProductoSchema(Schema):
    id = fields.Integer(dump_only=True)
    nombre = fields.String()
    descripcion = fields.String()
    precio = Money()
    descuento = fields.Integer()
    precio_final = Money(dump_only=True)
    stock = fields.Integer()
    categoria = fields.String()
    imagen_url = fields.String()
    activo = fields.Boolean()
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


ProductoPageSchema = page_schema(ProductoSchema)


class ProductoWriteFields(Schema):
    """Fields staff may set; create and update differ only in what is required."""

    nombre = text(200, 1, required=True, metadata={"description": NOT_BLANK})
    descripcion = text(10_000)
    precio = positive_money(required=True)
    descuento = strict_int(validate=validate.Range(min=0, max=100))
    stock = strict_int(validate=validate.Range(min=0, max=MAX_INT))
    categoria = fields.String(validate=validate.OneOf(CATEGORIAS))
    imagen_url = text(500, metadata=IMAGEN_URL_FIELD)
    activo = strict_bool()

    @validates("nombre")
    def nombre_not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("The name cannot be blank.")

    @validates("imagen_url")
    def imagen_url_is_an_address(self, value: str, **_: Any) -> None:
        if not re.fullmatch(IMAGEN_URL, value):
            raise ValidationError(
                "An http(s) URL or a path from the site's root (/… but not // or /\\)."
            )


class ProductoCreateSchema(ProductoWriteFields):
    descripcion = text(10_000, load_default="")
    descuento = strict_int(validate=validate.Range(min=0, max=100), load_default=0)
    stock = strict_int(validate=validate.Range(min=0, max=MAX_INT), load_default=0)
    categoria = fields.String(validate=validate.OneOf(CATEGORIAS), load_default="otros")
    imagen_url = text(500, load_default="", metadata=IMAGEN_URL_FIELD)
    activo = strict_bool(load_default=True)


class ProductoUpdateSchema(PatchBody, ProductoWriteFields):
    nombre = text(200, 1, metadata={"description": NOT_BLANK})
    precio = positive_money()


class ProductoQueryArgsSchema(PaginationArgsSchema):
    """`?categoria=&q=` means no filter, as a search form sends it."""

    categoria = fields.String(validate=validate.OneOf(CATEGORIAS))
    q = search_param(200, "nombre or descripcion")


class ProductoAdminQueryArgsSchema(ProductoQueryArgsSchema):
    activo = fields.Boolean()
