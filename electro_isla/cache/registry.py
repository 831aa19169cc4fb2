"""Every cached name: its TTL, the tables and columns it is computed from.

A write to a table invalidates the names that read it, so adding a cached name
without saying what it reads is impossible, and no write can forget an
invalidation. Row families (`producto`, `perfil_usuario`, `acceso_usuario`) are
keyed by one row
of `row_table`: a write to that row invalidates that row's entries only.

Column dependencies: `reads` names, per table, the columns a name's values are
computed from (a table left out of `reads` counts as every column: safe by
default); `membership` the columns that decide *which* rows a value shows and
in what order. An ORM UPDATE that changes none of them leaves the name alone;
an INSERT or DELETE is a membership change; bulk and raw SQL, which cannot
say what they changed, invalidate the whole name.

A composed name (`rows_of`, the catalogue pages) caches its ordered id list
(depending on `membership` only) apart from one rendered fragment per row: a
change to a column it only displays invalidates that row's fragment, never
the id lists. tests/cache/test_dependencies.py checks every declaration
against the SQL each fetch really sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from marshmallow import Schema

from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import ProductoSchema

# Where the app keeps its CacheManager (app.extensions): here, below every module that
# looks it up (listeners cannot import the manager, which imports them).
EXTENSION_KEY = "electro_isla.cache"
ALL = None  # reads[table] missing or None: every column
Change = Literal["insert", "update", "delete", "bulk"]


@dataclass(frozen=True)
class CachedName:
    name: str
    ttl: int
    tables: frozenset[str] = field(default_factory=frozenset)
    row_table: str | None = None
    # Query parameters that may take part in the key; anything else is ignored.
    params: tuple[str, ...] = ()
    # table -> columns read; a table of `tables` absent here: every column.
    reads: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # table -> columns that decide which rows are shown and their order.
    membership: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # A composed name: its values are id lists of this table plus one fragment per row.
    rows_of: str | None = None

    def __post_init__(self) -> None:
        tables = set(self.tables) | set(self.reads) | set(self.membership)
        if self.row_table:
            tables.discard(self.row_table)  # its writes are per row, not family-wide
        object.__setattr__(self, "tables", frozenset(tables))
        for table, columns in self.membership.items():
            read = self.reads.get(table)
            if read is not None and not columns <= read:
                raise ValueError(f"{self.name}: membership columns of {table} must be read")
        if self.rows_of and self.rows_of not in self.membership:
            raise ValueError(f"{self.name}: a composed name declares its membership columns")

    def columns(self, table: str) -> frozenset[str] | None:
        """Every column of `table` this name reads (None: all of them)."""
        if table not in self.tables and table != self.row_table:
            return frozenset()
        return self.reads.get(table)

    def watches(self, table: str, changed: frozenset[str] | None) -> bool:
        """Would an UPDATE of these columns (None: unknown) change a family-wide value?"""
        if table not in self.tables:
            return False
        watched = self.membership[table] if self.rows_of == table else self.columns(table)
        return changed is None or watched is None or bool(watched & changed)

    def row_watches(self, table: str, changed: frozenset[str] | None) -> bool:
        """Would an UPDATE of these columns change one row's value (row family or fragment)?"""
        if table != self.row_table and table != self.rows_of:
            return False
        watched = self.columns(table)
        return changed is None or watched is None or bool(watched & changed)


def _names(*entries: CachedName) -> dict[str, CachedName]:
    return {entry.name: entry for entry in entries}


def cols(*names: str) -> frozenset[str]:
    return frozenset(names)


SALES_TABLES = frozenset({"pedidos", "detalles_pedido", "productos"})


def document_columns(
    schema: Schema, model: type, computed: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """The columns a schema's document shows: its fields that are columns of `model`,
    plus the columns each computed field (`computed`: field -> columns) is derived from.

    A field that is neither is refused, so a new computed field cannot go unwatched.
    """
    table = frozenset(model.__table__.columns.keys())
    shown: set[str] = set()
    for name, schema_field in schema.fields.items():
        attribute = schema_field.attribute or name
        if attribute in computed:
            shown |= computed[attribute]
        elif attribute in table:
            shown.add(attribute)
        else:
            raise ValueError(f"{type(schema).__name__}.{name}: not a column; say what it reads")
    return frozenset(shown)


# What a producto's document shows (precio_final: Producto.precio_final's inputs).
PRODUCTO_COLUMNS = document_columns(
    ProductoSchema(), Producto, {"precio_final": cols("precio", "descuento")}
)
# Best sellers name and classify products; stock and prices do not matter to them.
VENDIDOS = {"productos": cols("id", "nombre", "categoria")}
VENTAS = {
    **VENDIDOS,
    "pedidos": cols("estado", "metodo_pago", "total", "created_at"),
    "detalles_pedido": cols("pedido_id", "producto_id", "cantidad", "subtotal"),
}

PER_MONTH = ("mes", "zona")

REGISTRY: dict[str, CachedName] = _names(
    # "mes": the current month, so a new month never reuses last month's window; "zona":
    # the TIMEZONE that drew its boundaries, so hosts (or a restart) with another never
    # answer each other's months.
    CachedName("estadisticas_ventas", 300, SALES_TABLES, params=PER_MONTH, reads=VENTAS),
    CachedName("productos_vendidos", 300, SALES_TABLES, reads=VENDIDOS),
    CachedName("metodos_pago", 600, frozenset({"pedidos"})),
    # Activity and retention count orders, so orders invalidate user statistics too.
    # (Not an order's estado or total: only who placed how many.)
    CachedName(
        "estadisticas_usuarios",
        600,
        params=PER_MONTH,
        reads={
            "usuarios": cols("id", "username", "first_name", "last_name", "rol", "date_joined"),
            "pedidos": cols("usuario_id"),
        },
    ),
    CachedName(
        "estadisticas_productos",
        300,
        reads={"productos": cols("id", "nombre", "precio", "stock", "categoria", "activo")},
    ),
    CachedName(
        "reporte_general",
        300,
        params=PER_MONTH,
        reads={
            "usuarios": cols("id"),
            "productos": cols("id", "activo"),
            "pedidos": cols("estado", "total", "created_at"),
        },
    ),
    CachedName(
        "lista_productos",
        300,
        params=("categoria", "q", "page", "page_size"),
        reads={"productos": PRODUCTO_COLUMNS},
        # The filters (categoria, q over nombre/descripcion, activo) and the order (id).
        membership={"productos": cols("id", "activo", "categoria", "nombre", "descripcion")},
        rows_of="productos",
    ),
    CachedName("producto", 300, row_table="productos", reads={"productos": PRODUCTO_COLUMNS}),
    CachedName("perfil_usuario", 3600, row_table="usuarios"),
    # The per-request role/is_active check: short, so a change that bypasses the
    # app (raw SQL) takes effect within a minute; app writes invalidate at once.
    CachedName("acceso_usuario", 60, row_table="usuarios"),
)


def names_for_table(table: str) -> list[CachedName]:
    """Family-wide dependants of a table (row families excluded)."""
    return [entry for entry in REGISTRY.values() if table in entry.tables]


def row_names_for_table(table: str) -> list[CachedName]:
    """Names with per-row entries of `table`: row families and composed names' fragments."""
    return [entry for entry in REGISTRY.values() if table in (entry.row_table, entry.rows_of)]


def targets(
    table: str, change: Change, row: object, changed: frozenset[str] | None = None
) -> tuple[set[str], set[tuple[str, object]]]:
    """(names, (name, row) pairs) a committed change of one row (or a bulk one) invalidates.

    `changed`: the columns an UPDATE changed (None: unknown, i.e. every column).
    """
    names: set[str] = set()
    rows: set[tuple[str, object]] = set()
    for entry in names_for_table(table):
        if change != "update" or entry.watches(table, changed):
            names.add(entry.name)
    for entry in row_names_for_table(table):
        if change == "bulk":
            names.add(entry.name)
        elif entry.row_table == table:
            if change != "update" or entry.row_watches(table, changed):
                rows.add((entry.name, row))
        elif entry.name not in names and entry.row_watches(table, changed):
            # A composed name whose id lists stay: only this row's fragment changed.
            rows.add((entry.name, row))
    return names, rows
