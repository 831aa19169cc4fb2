"""Rollup tables the statistics read instead of scanning the orders.

They are written only by database triggers (migration 0002_estadisticas_rollups),
in the same transaction as the write to pedidos, detalles_pedido or usuarios, so
raw SQL, COPY and imports keep them exact too. Never write them from the ORM:
the cache registry lists the source tables, whose writes invalidate the figures.

Money is kept in integer cents (exact on SQLite, whose NUMERIC is a float).
Tables whose rows every order touches ("hot rows") have a `slot` column: each
database connection adds into its own slot (backend pid mod 16 on PostgreSQL, 0
on SQLite), so concurrent buyers do not queue on one row; readers sum the slots.
Rows are never deleted by the triggers; a count may net to 0 (or be negative in
one slot), which the readers handle.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, SmallInteger, String, Table

from electro_isla.extensions import db

# Pedidos (any estado) per UTC day of created_at: reporte's counts.
pedidos_dia = Table(
    "estadisticas_pedidos_dia",
    db.metadata,
    Column("dia", Date, primary_key=True),
    Column("estado", String(20), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("pedidos", BigInteger, nullable=False),
)

# Sales per UTC day of created_at and metodo_pago: count and Σ total.
ventas_dia = Table(
    "estadisticas_ventas_dia",
    db.metadata,
    Column("dia", Date, primary_key=True),
    Column("metodo_pago", String(20), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("pedidos", BigInteger, nullable=False),
    Column("total_centimos", BigInteger, nullable=False),
)

# Units and Σ subtotal per producto over the lines of sales.
productos_vendidos = Table(
    "estadisticas_productos_vendidos",
    db.metadata,
    Column("producto_id", Integer, primary_key=True, autoincrement=False),
    Column("cantidad", BigInteger, nullable=False),
    Column("ingresos_centimos", BigInteger, nullable=False),
    Index("ix_estadisticas_productos_vendidos_cantidad", "cantidad"),
)

# Pedidos (any estado) per usuario: the most active buyers.
usuarios_pedidos = Table(
    "estadisticas_usuarios_pedidos",
    db.metadata,
    Column("usuario_id", Integer, primary_key=True, autoincrement=False),
    Column("pedidos", BigInteger, nullable=False),
    Index("ix_estadisticas_usuarios_pedidos_pedidos", "pedidos"),
)

# Usuarios with at least one pedido, and with more than one: retention.
retencion = Table(
    "estadisticas_retencion",
    db.metadata,
    Column("slot", SmallInteger, primary_key=True, autoincrement=False),
    Column("con_pedidos", BigInteger, nullable=False),
    Column("recurrentes", BigInteger, nullable=False),
)

# Usuarios per UTC day of date_joined and rol.
usuarios_dia = Table(
    "estadisticas_usuarios_dia",
    db.metadata,
    Column("dia", Date, primary_key=True),
    Column("rol", String(20), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("usuarios", BigInteger, nullable=False),
)

ROLLUPS = (pedidos_dia, ventas_dia, productos_vendidos, usuarios_pedidos, retencion, usuarios_dia)

# What each rollup is computed from: the tables whose writes change it (through the
# triggers), and so the tables a cached figure read from it depends on.
FUENTES: dict[str, frozenset[str]] = {
    pedidos_dia.name: frozenset({"pedidos"}),
    ventas_dia.name: frozenset({"pedidos"}),
    productos_vendidos.name: frozenset({"pedidos", "detalles_pedido"}),
    usuarios_pedidos.name: frozenset({"pedidos"}),
    retencion.name: frozenset({"pedidos"}),
    usuarios_dia.name: frozenset({"usuarios"}),
}
