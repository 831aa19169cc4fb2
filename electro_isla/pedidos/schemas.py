"""Pedido schemas: placing an order, moving it along, and what is answered."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from electro_isla.catalogo.schemas import NOT_BLANK, id_field
from electro_isla.fields import Money, PatchBody, Timestamp, strict_int, text
from electro_isla.pagination import PaginationArgsSchema, page_schema
from electro_isla.pedidos.models import ESTADOS, METODOS_PAGO

MAX_ITEMS = 50
MAX_CANTIDAD = 100_000


class DetallePedidoSchema(Schema):
    producto_id = fields.Integer()
    producto_nombre = fields.String()
    cantidad = fields.Integer()
    precio_unitario = Money()
    subtotal = Money()


class PedidoSchema(Schema):
    id = fields.Integer()
    usuario_id = fields.Integer()
    estado = fields.String()
    metodo_pago = fields.String()
    total = Money()
    direccion_entrega = fields.String()
    telefono = fields.String()
    notas = fields.String()
    mensajero_id = fields.Integer(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    fecha_entrega = Timestamp(allow_none=True)
    detalles = fields.List(fields.Nested(DetallePedidoSchema))


PedidoPageSchema = page_schema(PedidoSchema)


class MisPedidosSchema(Schema):
    count = fields.Integer()
    pedidos = fields.List(fields.Nested(PedidoSchema))


class PedidoItemSchema(Schema):
    producto_id = id_field(required=True)
    cantidad = strict_int(required=True, validate=validate.Range(min=1, max=MAX_CANTIDAD))


class EntregaSinBlancos(Schema):
    """direccion_entrega and telefono, whenever sent, hold more than spaces."""

    @validates("direccion_entrega", "telefono")
    def not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("This field cannot be blank.")


class PedidoCreateSchema(EntregaSinBlancos):
    items = fields.List(
        fields.Nested(PedidoItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
        metadata={
            "description": "Each producto_id at most once (add up its cantidad), each an"
            " active producto; otherwise 422 naming `items` or `items.<i>`.",
            "uniqueItems": True,
        },
    )
    metodo_pago = fields.String(required=True, validate=validate.OneOf(METODOS_PAGO))
    direccion_entrega = text(500, 1, required=True, metadata={"description": NOT_BLANK})
    telefono = text(30, 1, required=True, metadata={"description": NOT_BLANK})
    notas = text(2000, load_default="")

    @validates_schema
    def no_repeated_producto(self, data: dict[str, Any], **_: Any) -> None:
        """Runs only once every item is valid (skip_on_field_errors)."""
        ids = [item["producto_id"] for item in data["items"]]
        if len(ids) != len(set(ids)):
            raise ValidationError(
                "A producto may appear only once; add up its cantidad.", field_name="items"
            )


class PedidoUpdateSchema(PatchBody, EntregaSinBlancos):
    """What staff may change on an order; a mensajero may send `estado` only."""

    estado = fields.String(validate=validate.OneOf(ESTADOS))
    direccion_entrega = text(500, 1, metadata={"description": NOT_BLANK})
    telefono = text(30, 1, metadata={"description": NOT_BLANK})
    notas = text(2000)


class AsignarMensajeroSchema(Schema):
    mensajero_id = id_field(
        required=True,
        metadata={
            "description": "The id of an active usuario whose rol is mensajero;"
            " any other id is a 422 naming `mensajero_id`."
        },
    )


class PedidoQueryArgsSchema(PaginationArgsSchema):
    """`?estado=` means every estado."""

    estado = fields.String(validate=validate.OneOf(ESTADOS))
