from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from electro_isla.db_types import Money, UTCDateTime, utcnow
from electro_isla.extensions import db

ESTADOS = ("pendiente", "confirmado", "en_preparacion", "en_camino", "entregado", "cancelado")
METODOS_PAGO = ("efectivo", "tarjeta", "transferencia")
# A sale, for every statistic: an order the store has accepted and not cancelled.
ESTADOS_VENTA = ("confirmado", "en_preparacion", "en_camino", "entregado")
ESTADOS_EN_PROCESO = ("confirmado", "en_preparacion", "en_camino")
TRANSICIONES: dict[str, frozenset[str]] = {
    "pendiente": frozenset({"confirmado", "cancelado"}),
    "confirmado": frozenset({"en_preparacion", "cancelado"}),
    "en_preparacion": frozenset({"en_camino", "cancelado"}),
    "en_camino": frozenset({"entregado", "cancelado"}),
    "entregado": frozenset(),
    "cancelado": frozenset(),
}


class Pedido(db.Model):
    __tablename__ = "pedidos"
    __table_args__ = (
        CheckConstraint(
            "estado IN ('pendiente', 'confirmado', 'en_preparacion', 'en_camino', "
            "'entregado', 'cancelado')",
            name="estado",
        ),
        CheckConstraint(
            "metodo_pago IN ('efectivo', 'tarjeta', 'transferencia')", name="metodo_pago"
        ),
        CheckConstraint("total >= 0", name="total_no_negativo"),
        Index("ix_pedidos_created_at", "created_at"),
        Index("ix_pedidos_estado", "estado"),
        Index("ix_pedidos_usuario_id", "usuario_id"),
        Index("ix_pedidos_mensajero_id", "mensajero_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id", ondelete="RESTRICT"))
    estado: Mapped[str] = mapped_column(String(20), default="pendiente")
    metodo_pago: Mapped[str] = mapped_column(String(20))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    direccion_entrega: Mapped[str] = mapped_column(Text)
    telefono: Mapped[str] = mapped_column(String(30))
    notas: Mapped[str] = mapped_column(Text, default="")
    mensajero_id: Mapped[int | None] = mapped_column(
        ForeignKey("usuarios.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    fecha_entrega: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    detalles: Mapped[list[DetallePedido]] = relationship(
        back_populates="pedido", cascade="all, delete-orphan", order_by="DetallePedido.id"
    )


class DetallePedido(db.Model):
    __tablename__ = "detalles_pedido"
    __table_args__ = (
        CheckConstraint("cantidad >= 1", name="cantidad_positiva"),
        CheckConstraint("precio_unitario >= 0", name="precio_unitario_no_negativo"),
        Index("ix_detalles_pedido_producto_id", "producto_id"),
        Index("ix_detalles_pedido_pedido_id", "pedido_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pedido_id: Mapped[int] = mapped_column(ForeignKey("pedidos.id", ondelete="CASCADE"))
    producto_id: Mapped[int] = mapped_column(ForeignKey("productos.id", ondelete="RESTRICT"))
    # The name as sold, so an order keeps reading the same after a rename.
    producto_nombre: Mapped[str] = mapped_column(String(200))
    cantidad: Mapped[int] = mapped_column(Integer)
    precio_unitario: Mapped[Decimal] = mapped_column(Money)
    subtotal: Mapped[Decimal] = mapped_column(Money)

    pedido: Mapped[Pedido] = relationship(back_populates="detalles")
