from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from electro_isla.db_types import Money, UTCDateTime, money, utcnow
from electro_isla.extensions import db

CATEGORIAS = (
    "electrodomesticos",
    "energia_tecnologia",
    "herramientas",
    "hogar_entretenimiento",
    "otros",
)


class Producto(db.Model):
    __tablename__ = "productos"
    __table_args__ = (
        CheckConstraint("precio > 0", name="precio_positivo"),
        CheckConstraint("descuento >= 0 AND descuento <= 100", name="descuento_rango"),
        CheckConstraint("stock >= 0", name="stock_no_negativo"),
        CheckConstraint(
            "categoria IN ('electrodomesticos', 'energia_tecnologia', 'herramientas', "
            "'hogar_entretenimiento', 'otros')",
            name="categoria",
        ),
        Index("ix_productos_categoria_activo", "categoria", "activo"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nombre: Mapped[str] = mapped_column(String(200))
    descripcion: Mapped[str] = mapped_column(Text, default="")
    precio: Mapped[Decimal] = mapped_column(Money)
    descuento: Mapped[int] = mapped_column(Integer, default=0)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    categoria: Mapped[str] = mapped_column(String(40), default="otros")
    imagen_url: Mapped[str] = mapped_column(String(500), default="")
    activo: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def precio_final(self) -> Decimal:
        return money(Decimal(self.precio) * (100 - self.descuento) / 100)
