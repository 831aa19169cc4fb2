"""Every cached name: its TTL and the tables it is computed from.

A write to a table invalidates every name that lists it, so adding a cached
name without saying what it reads is impossible, and no write can forget an
invalidation. Row families (`producto`, `perfil_usuario`, `acceso_usuario`) are keyed by one row
of `row_table`: a write to that row invalidates that row's entries only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CachedName:
    name: str
    ttl: int
    tables: frozenset[str] = field(default_factory=frozenset)
    row_table: str | None = None
    # Query parameters that may take part in the key; anything else is ignored.
    params: tuple[str, ...] = ()


def _names(*entries: CachedName) -> dict[str, CachedName]:
    return {entry.name: entry for entry in entries}


SALES_TABLES = frozenset({"pedidos", "detalles_pedido", "productos"})

REGISTRY: dict[str, CachedName] = _names(
    # "mes": the current month, so a new month never reuses last month's window.
    CachedName("estadisticas_ventas", 300, SALES_TABLES, params=("mes",)),
    CachedName("productos_vendidos", 300, SALES_TABLES),
    CachedName("metodos_pago", 600, frozenset({"pedidos"})),
    # Activity and retention count orders, so orders invalidate user statistics too.
    CachedName("estadisticas_usuarios", 600, frozenset({"usuarios", "pedidos"}), params=("mes",)),
    CachedName("estadisticas_productos", 300, frozenset({"productos"})),
    CachedName(
        "reporte_general",
        300,
        frozenset({"usuarios", "productos", "pedidos"}),
        params=("mes",),
    ),
    CachedName(
        "lista_productos",
        300,
        frozenset({"productos"}),
        params=("categoria", "q", "page", "page_size"),
    ),
    CachedName("producto", 300, row_table="productos"),
    CachedName("perfil_usuario", 3600, row_table="usuarios"),
    # The per-request role/is_active check: short, so a change that bypasses the
    # app (raw SQL) takes effect within a minute; app writes invalidate at once.
    CachedName("acceso_usuario", 60, row_table="usuarios"),
)


def names_for_table(table: str) -> list[CachedName]:
    """Family-wide dependants of a table (row families excluded)."""
    return [entry for entry in REGISTRY.values() if table in entry.tables]


def row_names_for_table(table: str) -> list[CachedName]:
    return [entry for entry in REGISTRY.values() if entry.row_table == table]
