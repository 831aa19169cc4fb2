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

# What each rollup column is computed from, {rollup: {column: {source table: columns}}}
# ("*": what decides whether a source row counts at all): the triggers read these
# source columns, so a cached figure read from a rollup column depends on them.
DERIVACION: dict[str, dict[str, dict[str, frozenset[str]]]] = {
    pedidos_dia.name: {
        "dia": {"pedidos": frozenset({"created_at"})},
        "estado": {"pedidos": frozenset({"estado"})},
    },
    ventas_dia.name: {
        "*": {"pedidos": frozenset({"estado"})},
        "dia": {"pedidos": frozenset({"created_at"})},
        "metodo_pago": {"pedidos": frozenset({"metodo_pago"})},
        "total_centimos": {"pedidos": frozenset({"total"})},
    },
    productos_vendidos.name: {
        "*": {"pedidos": frozenset({"estado"}), "detalles_pedido": frozenset({"pedido_id"})},
        "producto_id": {"detalles_pedido": frozenset({"producto_id"})},
        "cantidad": {"detalles_pedido": frozenset({"cantidad"})},
        "ingresos_centimos": {"detalles_pedido": frozenset({"subtotal"})},
    },
    usuarios_pedidos.name: {
        "usuario_id": {"pedidos": frozenset({"usuario_id"})},
        "pedidos": {"pedidos": frozenset({"usuario_id"})},
    },
    retencion.name: {
        "con_pedidos": {"pedidos": frozenset({"usuario_id"})},
        "recurrentes": {"pedidos": frozenset({"usuario_id"})},
    },
    usuarios_dia.name: {
        "dia": {"usuarios": frozenset({"date_joined"})},
        "rol": {"usuarios": frozenset({"rol"})},
    },
}

# What each rollup is computed from: the tables whose writes change it (through the
# triggers), and so the tables a cached figure read from it depends on.
FUENTES: dict[str, frozenset[str]] = {
    rollup: frozenset(t for sources in columns.values() for t in sources)
    for rollup, columns in DERIVACION.items()
}


def fuentes_de(rollup: str, columnas: set[str]) -> dict[str, set[str]]:
    """{source table: columns} that the given columns of `rollup` are derived from."""
    found: dict[str, set[str]] = {}
    if not columnas:
        return found
    for columna in {"*", *columnas}:
        for table, columns in DERIVACION[rollup].get(columna, {}).items():
            found.setdefault(table, set()).update(columns)
    return found
