"""Rollup tables the statistics read instead of scanning the orders.

They are written only by database triggers (migrations 0002_estadisticas_rollups,
0007_rollups_sin_fila_caliente, 0008_un_delta_por_pedido, 0009_deltas_por_fila and
0010_totales_por_clave; 0017_filas_como_deltas),
in the same transaction as the write to pedidos, detalles_pedido or usuarios, so raw SQL, COPY
and imports keep them exact too. Never write them from the ORM: the cache registry lists the source tables,
whose writes invalidate the figures.

On PostgreSQL an inserted pedido or line is its own delta (0017): it carries the
id of its transaction (`alta_xact`) and `estadisticas_plegar()`, now and then, takes
the rows of ended transactions into the delta tables, moves a horizon past them and
folds the deltas into the rollup rows. An UPDATE or DELETE of a row the fold has
taken inserts its change into a delta table (no row another writer waits on): one
`estadisticas_pedidos_delta` row per changed pedido carries the deltas of three
rollups at once, the others have a `<rollup>_delta` table each. A reader adds the
rollup and what is not folded yet (estadisticas/rollups.py, through `delta_de`):
the delta tables, and for pedidos and lines a view that adds the untaken rows. On
SQLite, whose writers are serial, the row triggers write the rollups directly, the
deltas stay empty and the views are the delta tables.

Money is kept in integer cents (exact on SQLite, whose NUMERIC is a float). The
`slot` columns are 0 since 0007 (0002 spread hot rows over pid slots); readers
still sum over them. Rows are never deleted by the triggers; a count may net to 0,
which the readers handle.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Subquery,
    Table,
    select,
)

from electro_isla.extensions import db
from electro_isla.pedidos.models import ESTADOS_VENTA

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


def _total(rollup: Table, nombre: str, clave: str) -> Table:
    """The rollup summed over every day, one row per `clave` (migration 0010: kept by
    triggers on the rollup itself, so whatever writes the rollup keeps it)."""
    valores = [c.name for c in rollup.columns if c.name not in ("dia", "slot", clave)]
    return Table(
        nombre,
        db.metadata,
        Column(clave, String(20), primary_key=True),
        *(Column(v, BigInteger, nullable=False) for v in valores),
    )


# All-history totals per estado, metodo_pago and rol: a reader adds them and the
# rollup's unfolded deltas instead of summing every day of history.
pedidos_estado = _total(pedidos_dia, "estadisticas_pedidos_estado", "estado")
ventas_metodo = _total(ventas_dia, "estadisticas_ventas_metodo", "metodo_pago")
usuarios_rol = _total(usuarios_dia, "estadisticas_usuarios_rol", "rol")
TOTAL_DE: dict[str, Table] = {
    pedidos_dia.name: pedidos_estado,
    ventas_dia.name: ventas_metodo,
    usuarios_dia.name: usuarios_rol,
}


def _delta(rollup: Table) -> Table:
    """The rollup's delta table: its columns but `slot`, no key (INSERT only)."""
    return Table(
        f"{rollup.name}_delta",
        db.metadata,
        *(
            Column(c.name, c.type, nullable=False, autoincrement=False)
            for c in rollup.columns
            if c.name != "slot"
        ),
    )


# One row per (UTC day, estado, metodo_pago, usuario) a statement on pedidos changed:
# the deltas of pedidos_dia, ventas_dia (sale estados only) and usuarios_pedidos.
pedidos_delta = Table(
    "estadisticas_pedidos_delta",
    db.metadata,
    Column("dia", Date, nullable=False),
    Column("estado", String(20), nullable=False),
    Column("metodo_pago", String(20), nullable=False),
    Column("usuario_id", Integer, nullable=False, autoincrement=False),
    Column("pedidos", BigInteger, nullable=False),
    Column("total_centimos", BigInteger, nullable=False),
)

# The delta tables the triggers insert into and the fold empties.
DELTAS = (pedidos_delta, _delta(productos_vendidos), _delta(usuarios_dia))


# What a reader adds to the rollups fed by pedidos and by lines (migration 0017): the
# delta table, plus on PostgreSQL the rows no fold has taken yet. Views: a MetaData of
# their own, so `create_all` does not make them tables.
VISTAS = MetaData()
pedidos_pendientes = Table(
    "estadisticas_pedidos_pendientes",
    VISTAS,
    *(Column(c.name, c.type) for c in pedidos_delta.columns),
)
productos_pendientes = Table(
    "estadisticas_productos_vendidos_pendientes",
    VISTAS,
    *(Column(c.name, c.type) for c in DELTAS[1].columns),
)
# Each view and the delta table it reads (on SQLite, all it reads).
PENDIENTES = {pedidos_pendientes: pedidos_delta, productos_pendientes: DELTAS[1]}
# Everything a fold would move: the two views and the delta table no view reads.
SIN_PLEGAR = (*PENDIENTES, *(t for t in DELTAS if t not in PENDIENTES.values()))

# Kept by the migrations alone (0017), like the triggers: the app never reads or writes
# them, so they are not in the models.
SOLO_EN_LA_BASE = {
    ("column", "pedidos", "alta_xact"),
    ("column", "detalles_pedido", "alta_xact"),
    ("index", "pedidos", "ix_pedidos_alta_xact"),
    ("index", "detalles_pedido", "ix_detalles_pedido_alta_xact"),
    ("table", "estadisticas_horizonte", "estadisticas_horizonte"),
}


def en_los_modelos(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's include_object: False for what SOLO_EN_LA_BASE lists, so autogenerate
    and the schema comparison neither drop nor report it."""
    table = getattr(obj, "table", obj) if type_ != "table" else obj
    return (type_, getattr(table, "name", name), name) not in SOLO_EN_LA_BASE


# The rollups whose deltas are sums over pedidos_delta's rows (ventas_dia: sales only).
DE_PEDIDOS = {pedidos_dia.name: False, ventas_dia.name: True, usuarios_pedidos.name: False}

# What is not folded of each other keyed rollup: a view (productos: deltas and untaken
# lines) or its delta table (retencion is derived by the fold).
DELTA_DE: dict[str, Table] = {
    productos_vendidos.name: productos_pendientes,
    usuarios_dia.name: DELTAS[2],
}


def delta_de(rollup: Table, *columnas: str) -> Table | Subquery:
    """What is not folded into the rollup yet (its deltas and, since 0017, the untaken
    rows) as rows of `columnas` (default: all its columns but `slot`), to be summed per
    key like the rollup's own rows; only the columns asked for are read, so a cached
    figure depends on no other."""
    if rollup.name in DELTA_DE:
        return DELTA_DE[rollup.name]
    names = columnas or [c.name for c in rollup.columns if c.name != "slot"]
    query = select(*(pedidos_pendientes.c[c] for c in names))
    if DE_PEDIDOS[rollup.name]:
        query = query.where(pedidos_pendientes.c.estado.in_(ESTADOS_VENTA))
    return query.subquery(f"{rollup.name}_delta")


# Every table the statistics triggers keep (what `estadisticas-rebuild` rewrites).
ROLLUPS = (
    pedidos_dia,
    ventas_dia,
    productos_vendidos,
    usuarios_pedidos,
    retencion,
    usuarios_dia,
    *DELTAS,
    *TOTAL_DE.values(),  # after their rollups: emptied last, refilled by their triggers
)

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

# A delta's columns are derived as its rollup's. pedidos_delta's rows exist for every
# estado: the ventas reader filters on its estado column, which is its "*".
DERIVACION.update({t.name: DERIVACION[t.name.removesuffix("_delta")] for t in DELTAS[1:]})
# A view's columns are derived as its delta table's (0017: the untaken rows it adds
# are read from the same source columns the triggers read).
DERIVACION[productos_pendientes.name] = DERIVACION[DELTAS[1].name]
# A total's columns are derived as its rollup's (it has no dia).
DERIVACION.update({t.name: DERIVACION[rollup] for rollup, t in TOTAL_DE.items()})
DERIVACION[pedidos_delta.name] = {
    "dia": {"pedidos": frozenset({"created_at"})},
    "estado": {"pedidos": frozenset({"estado"})},
    "metodo_pago": {"pedidos": frozenset({"metodo_pago"})},
    "usuario_id": {"pedidos": frozenset({"usuario_id"})},
    "total_centimos": {"pedidos": frozenset({"total"})},
}
DERIVACION[pedidos_pendientes.name] = DERIVACION[pedidos_delta.name]

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
