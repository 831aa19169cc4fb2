"""Every column dependency in the registry, proved against the SQL each fetch sends.

Each cached name's fetch runs for real (through its endpoint, on PostgreSQL);
every statement sent while `ReadPipeline.fetch` runs for that name is kept, and
the `table.column` references in it are compared with the declaration:
nothing read may be undeclared (else a write to it would be missed), and a
declared column list must be exactly what is read (else writes to other columns
would invalidate for nothing). A composed page's id list may read only its
membership columns.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import event

from electro_isla.cache.listeners import changed_columns
from electro_isla.cache.reads import ReadPipeline
from electro_isla.cache.registry import REGISTRY, targets
from electro_isla.catalogo.models import Producto
from electro_isla.estadisticas.models import DERIVACION, fuentes_de
from electro_isla.extensions import db
from tests.cache.support import add_producto
from tests.helpers import user_with_role, writes_settled

# Registered names no endpoint fetches today (they must be covered once one does).
NOT_FETCHED = {"productos_vendidos", "metodos_pago"}


def referenced(statements: list[str]) -> dict[str, set[str]]:
    """{table: columns} named as `table.column` (or an alias `table_1.column`).

    A rollup's columns count as the source columns its triggers derive them from.
    """
    found: dict[str, set[str]] = defaultdict(set)
    for table in db.metadata.tables.values():
        names = {c.name for c in table.c}
        pattern = re.compile(rf'\b"?{re.escape(table.name)}(?:_\d+)?"?\."?(\w+)"?')
        for statement in statements:
            found[table.name].update(c for c in pattern.findall(statement) if c in names)
    for rollup in DERIVACION:
        for table, columns in fuentes_de(rollup, found.pop(rollup, set())).items():
            found[table] |= columns
    return {t: cols for t, cols in found.items() if cols}


@pytest.fixture
def fetches(app, monkeypatch):
    """{(name, part): statements} sent inside each fetch ("ids" / "rows" for pages)."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    current: list[tuple[str, str]] = []
    original = ReadPipeline.fetch

    def tracking(self, entry, key, fetch):  # noqa: ANN001, ANN202
        part = "ids" if key.endswith("|ids") else "rows" if entry.rows_of else "value"
        current.append((entry.name, part))
        try:
            return original(self, entry, key, fetch)
        finally:
            current.pop()

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if current:
            seen[current[-1]].append(statement)

    monkeypatch.setattr(ReadPipeline, "fetch", tracking)
    with app.app_context():
        engine = db.engine
    writes_settled(app)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def fetch_everything(app) -> None:
    client = app.test_client()
    producto_id = add_producto(app, "10.00", nombre="Radio", descripcion="FM")
    uid, admin = user_with_role(app, "admin")
    for url in (
        "/api/productos/",
        "/api/productos/?categoria=otros&q=radio",
        f"/api/productos/{producto_id}/",
        "/api/perfil/",
        "/api/admin/estadisticas/ventas/",
        "/api/admin/estadisticas/usuarios/",
        "/api/admin/estadisticas/productos/",
        "/api/admin/estadisticas/reporte/",
    ):
        assert client.get(url, headers=admin).status_code == 200, url
    assert uid


def test_every_declaration_is_what_its_fetch_reads(app, fetches):
    fetch_everything(app)
    fetched = {name for name, _part in fetches}
    assert fetched == set(REGISTRY) - NOT_FETCHED
    for (name, part), statements in fetches.items():
        entry = REGISTRY[name]
        reads = referenced(statements)
        allowed = set(entry.tables) | {entry.row_table} - {None}
        assert set(reads) <= allowed, (name, part, reads)
        for table, columns in reads.items():
            if part == "ids":  # a page's ids and count: membership columns only
                assert columns == set(entry.membership[table]), (name, table, columns)
                continue
            declared = entry.columns(table)
            if declared is None:  # declared as every column: nothing can be missed
                continue
            if part == "rows" or entry.row_table == table:
                assert columns == set(declared), (name, part, table, columns)
            else:
                assert columns == set(declared) | set(entry.membership.get(table, ())), (
                    name,
                    table,
                    columns,
                )


def test_the_control_an_undeclared_read_is_caught(app, fetches, monkeypatch):
    """Control: a fetch that reads one more column than declared fails the check."""
    from electro_isla.estadisticas import inventario

    original = inventario.productos

    def reads_more():  # noqa: ANN202
        db.session.execute(db.select(Producto.descuento)).all()
        return original()

    monkeypatch.setattr(inventario, "productos", reads_more)
    fetch_everything(app)
    statements = fetches[("estadisticas_productos", "value")]
    columns = referenced(statements)["productos"]
    assert "descuento" in columns
    assert not columns <= set(REGISTRY["estadisticas_productos"].columns("productos"))


def test_an_update_notes_the_columns_it_writes_and_the_onupdate_ones(app):
    producto_id = add_producto(app, "10.00", stock=5)
    with app.app_context():
        producto = db.session.get(Producto, producto_id)
        mapper = db.inspect(producto).mapper
        producto.stock = 5  # the value it already has: no change
        producto.precio = Decimal("10.00")
        assert changed_columns(mapper, producto) == {}
        producto.stock = 4
        assert changed_columns(mapper, producto) == {"productos": {"stock", "updated_at"}}
        db.session.rollback()


@pytest.mark.parametrize(
    ("columns", "names", "rows"),
    [
        ({"stock"}, {"estadisticas_productos"}, {"producto", "lista_productos"}),
        ({"precio"}, {"estadisticas_productos"}, {"producto", "lista_productos"}),
        ({"descuento"}, set(), {"producto", "lista_productos"}),
        ({"imagen_url"}, set(), {"producto", "lista_productos"}),
        ({"descripcion"}, {"lista_productos"}, {"producto"}),
        (
            {"nombre"},
            {
                "lista_productos",
                "estadisticas_productos",
                "estadisticas_ventas",
                "productos_vendidos",
            },
            {"producto"},
        ),
        (
            {"activo"},
            {"lista_productos", "estadisticas_productos", "reporte_general"},
            {"producto"},
        ),
    ],
)
def test_what_an_update_of_each_producto_column_invalidates(columns, names, rows):
    """The registry's answer, spelt out (updated_at comes with every UPDATE)."""
    found_names, found_rows = targets("productos", "update", 7, frozenset(columns | {"updated_at"}))
    assert found_names == names
    assert found_rows == {(name, 7) for name in rows}
