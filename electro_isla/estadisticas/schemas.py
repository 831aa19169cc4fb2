"""Response schemas of the dashboard; they also dump cached (already JSON) payloads."""

from __future__ import annotations

from marshmallow import Schema, fields

from electro_isla.fields import Money, Timestamp


class VentaMesSchema(Schema):
    mes = fields.String(metadata={"example": "2026-11"})
    total = Money()
    pedidos = fields.Integer()


class ProductoVendidoSchema(Schema):
    producto_id = fields.Integer()
    producto__nombre = fields.String()
    producto__categoria = fields.String()
    cantidad_vendida = fields.Integer()
    ingresos = Money()


class MetodoPagoSchema(Schema):
    metodo_pago = fields.String()
    count = fields.Integer()
    total = Money()


class EstadisticasVentasSchema(Schema):
    ventas_por_mes = fields.List(fields.Nested(VentaMesSchema))
    productos_mas_vendidos = fields.List(fields.Nested(ProductoVendidoSchema))
    metodos_pago = fields.List(fields.Nested(MetodoPagoSchema))
    ticket_promedio = Money()
    generado_en = Timestamp()


class UsuariosMesSchema(Schema):
    mes = fields.String(metadata={"example": "2026-11"})
    nuevos = fields.Integer()


class UsuariosRolSchema(Schema):
    rol = fields.String()
    count = fields.Integer()


class UsuarioActivoSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    pedidos_count = fields.Integer()


class EstadisticasUsuariosSchema(Schema):
    usuarios_por_mes = fields.List(fields.Nested(UsuariosMesSchema))
    usuarios_por_rol = fields.List(fields.Nested(UsuariosRolSchema))
    usuarios_mas_activos = fields.List(fields.Nested(UsuarioActivoSchema))
    total_usuarios = fields.Integer()
    usuarios_recurrentes = fields.Integer()
    tasa_retencion = Money(metadata={"description": "percent, two decimals"})
    generado_en = Timestamp()


class CategoriaSchema(Schema):
    categoria = fields.String()
    count = fields.Integer()
    stock_total = fields.Integer()


class StockBajoSchema(Schema):
    id = fields.Integer()
    nombre = fields.String()
    stock = fields.Integer()
    categoria = fields.String()


class ProductoRentableSchema(Schema):
    id = fields.Integer()
    nombre = fields.String()
    precio = Money()
    stock = fields.Integer()
    valor_total = Money()


class EstadisticasProductosSchema(Schema):
    productos_por_categoria = fields.List(fields.Nested(CategoriaSchema))
    stock_bajo = fields.List(fields.Nested(StockBajoSchema))
    productos_sin_stock = fields.Integer()
    valor_inventario = Money()
    productos_mas_rentables = fields.List(fields.Nested(ProductoRentableSchema))
    generado_en = Timestamp()


class ResumenSchema(Schema):
    total_usuarios = fields.Integer()
    total_productos = fields.Integer()
    total_pedidos = fields.Integer()
    ingresos_totales = Money()
    pedidos_mes = fields.Integer()
    ingresos_mes = Money()
    pedidos_pendientes = fields.Integer()
    pedidos_en_proceso = fields.Integer()


class ReporteGeneralSchema(Schema):
    resumen = fields.Nested(ResumenSchema)
    fecha_generacion = Timestamp()
    generado_en = Timestamp()
