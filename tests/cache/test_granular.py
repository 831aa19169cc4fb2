"""Granular invalidation: each kind of write invalidates what it changed, and only that.

Two app instances share PostgreSQL and Redis, as two workers would; a third
with the cache off answers from the database (the truth). For each write the
test records exactly which names and rows worker A invalidated, checks them
against a spelt-out expectation *and* against the registry's declaration (its
`targets` for the rows and columns the write changed), then reads every
catalogue page, detail and statistic through worker B: each answer equals the
truth, and it is a MISS exactly when something it depends on was invalidated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update

from electro_isla.cache import invalidate_after_commit, signals
from electro_isla.cache.registry import REGISTRY, targets
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from tests.cache.support import add_producto
from tests.helpers import user_with_role

STATS = {
    "estadisticas_ventas": "/api/admin/estadisticas/ventas/",
    "estadisticas_usuarios": "/api/admin/estadisticas/usuarios/",
    "estadisticas_productos": "/api/admin/estadisticas/productos/",
    "reporte_general": "/api/admin/estadisticas/reporte/",
}
PAGES = (
    "/api/productos/",
    "/api/productos/?categoria=otros",
    "/api/productos/?categoria=electrodomesticos",
    "/api/productos/?q=radio",
    "/api/productos/?page=2&page_size=1",
)
STAMPS = {"generado_en", "fecha_generacion"}
PRODUCTO_WRITES = frozenset({"productos"})
PEDIDO_NAMES = {
    "estadisticas_ventas",
    "productos_vendidos",
    "metodos_pago",
    "estadisticas_usuarios",
    "reporte_general",
}
PRODUCTO_READERS = {
    "lista_productos",
    "estadisticas_productos",
    "estadisticas_ventas",
    "productos_vendidos",
    "reporte_general",
}


@dataclass
class Shop:
    a: FlaskClient
    b: FlaskClient
    truth: FlaskClient
    app_a: Flask
    admin: dict[str, str]
    cliente: dict[str, str]
    radio: int
    nevera: int
    lampara: int
    pendientes: list[int] = field(default_factory=list)

    def reads(self) -> list[tuple[str, dict[str, str]]]:
        details = [f"/api/productos/{p}/" for p in (self.radio, self.nevera, self.lampara)]
        return [(u, {}) for u in (*PAGES, *details)] + [(u, self.admin) for u in STATS.values()]


def ok(response, code: int = 200) -> Any:
    assert response.status_code == code, response.get_json()
    return response.get_json()


def place_order(shop: Shop, producto_id: int, cantidad: int = 2) -> dict[str, Any]:
    body = {
        "items": [{"producto_id": producto_id, "cantidad": cantidad}],
        "metodo_pago": "tarjeta",
        "direccion_entrega": "Calle 2",
        "telefono": "555-0101",
    }
    return ok(shop.a.post("/api/pedidos/", json=body, headers=shop.cliente), 201)


@pytest.fixture
def shop(make_app, redis_mode) -> Shop:
    """Two workers sharing one Redis (single or Cluster), and a cache-less app as the truth."""
    app_a, app_b = make_app(**redis_mode), make_app(**redis_mode)
    truth = make_app(CACHE_ENABLED=False)
    _, admin = user_with_role(app_a, "admin")
    _, cliente = user_with_role(app_a, "cliente")
    radio = add_producto(app_a, "10.00", nombre="Radio FM", stock=50, descripcion="Portátil")
    nevera = add_producto(app_a, "300.00", nombre="Nevera", stock=5, categoria="electrodomesticos")
    lampara = add_producto(app_a, "4.50", nombre="Lámpara", stock=9)
    s = Shop(
        app_a.test_client(),
        app_b.test_client(),
        truth.test_client(),
        app_a,
        admin,
        cliente,
        radio,
        nevera,
        lampara,
    )
    s.pendientes = [place_order(s, radio)["id"], place_order(s, nevera, 1)["id"]]
    return s


def warm(shop: Shop) -> None:
    for url, headers in shop.reads():
        first = shop.a.get(url, headers=headers)
        again = shop.a.get(url, headers=headers)
        assert again.headers["X-Cache"] == "HIT", url
        assert again.data == first.data
        assert shop.b.get(url, headers=headers).headers["X-Cache"] == "HIT", url


def recording(app: Flask) -> tuple[set[str], set[tuple[str, int]], Callable[[], None]]:
    names: set[str] = set()
    rows: set[tuple[str, int]] = set()
    prefix = f"{app.config['CACHE_KEY_PREFIX']}:gen:"

    def receiver(sender: Flask, name: str, key: str, **_: Any) -> None:
        family, _, row = key.removeprefix(prefix).partition(":")
        family = family.strip("{}")  # the name's hash tag
        if row:
            rows.add((family, int(row)))
        else:
            names.add(family)

    signals.cache_invalidate.connect(receiver, sender=app)
    return names, rows, lambda: signals.cache_invalidate.disconnect(receiver, sender=app)


def without_stamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_stamps(v) for k, v in value.items() if k not in STAMPS}
    if isinstance(value, list):
        return [without_stamps(v) for v in value]
    return value


def check_reads(shop: Shop, names: set[str], rows: set[tuple[str, int]]) -> None:
    """Every read through B equals the truth; a MISS exactly where something was invalidated.

    Pages share their rows' fragments: the first page showing an invalidated row
    refills it (a MISS), the next pages showing it find it (a HIT).
    """
    refilled: set[int] = set()
    for url, headers in shop.reads():
        got, want = shop.b.get(url, headers=headers), shop.truth.get(url, headers=headers)
        assert got.status_code == want.status_code, url
        if url.startswith("/api/admin/"):
            assert without_stamps(got.get_json()) == without_stamps(want.get_json()), url
            name = next(n for n, u in STATS.items() if u == url)
            stale = name in names
        elif "?" in url or url == "/api/productos/":
            assert got.data == want.data, url  # byte for byte, and so the ETag
            assert got.headers["ETag"] == want.headers["ETag"], url
            shown = {item["id"] for item in got.get_json()["results"]}
            dirty = {p for p in shown if ("lista_productos", p) in rows}
            stale = "lista_productos" in names or bool(dirty - refilled)
            refilled |= dirty
        else:
            assert got.data == want.data, url
            producto_id = int(url.rstrip("/").rsplit("/", 1)[1])
            stale = "producto" in names or ("producto", producto_id) in rows
        assert got.headers["X-Cache"] == ("MISS" if stale else "HIT"), (url, names, rows)
        again = shop.a.get(url, headers=headers)
        assert (again.headers["X-Cache"], again.data) == ("HIT", got.data), url


# -- the writes: each returns the changes it made, as (table, change, row, columns) ------------


def patch(column: str, value: Any) -> Callable[[Shop], list[tuple]]:
    def write(shop: Shop) -> list[tuple]:
        url = f"/api/admin/productos/{shop.radio}/"
        ok(shop.a.patch(url, json={column: value}, headers=shop.admin))
        return [("productos", "update", shop.radio, {column, "updated_at"})]

    return write


def order_placed(shop: Shop) -> list[tuple]:
    pedido = place_order(shop, shop.radio, 3)
    return [
        ("pedidos", "insert", pedido["id"], None),
        ("detalles_pedido", "insert", None, None),  # no row family reads its rows
        ("productos", "update", shop.radio, {"stock", "updated_at"}),
    ]


def estado(nuevo: str) -> Callable[[Shop], list[tuple]]:
    def write(shop: Shop) -> list[tuple]:
        pedido_id = shop.pendientes[0]
        url = f"/api/admin/pedidos/{pedido_id}/"
        ok(shop.a.patch(url, json={"estado": nuevo}, headers=shop.admin))
        changes = [("pedidos", "update", pedido_id, {"estado", "updated_at"})]
        if nuevo == "cancelado":  # the stock goes back
            changes.append(("productos", "update", shop.radio, {"stock", "updated_at"}))
        return changes

    return write


def create(shop: Shop) -> list[tuple]:
    body = {"nombre": "Radio AM", "precio": "8.00", "stock": 3, "categoria": "otros"}
    nuevo = ok(shop.a.post("/api/admin/productos/", json=body, headers=shop.admin), 201)
    shop.created = nuevo["id"]  # type: ignore[attr-defined]
    return [("productos", "insert", nuevo["id"], None)]


def delete(shop: Shop) -> list[tuple]:
    assert (
        shop.a.delete(f"/api/admin/productos/{shop.lampara}/", headers=shop.admin).status_code
        == 204
    )
    return [("productos", "delete", shop.lampara, None)]


def raw_sql(shop: Shop) -> list[tuple]:
    with shop.app_a.app_context():
        db.session.execute(
            text("UPDATE productos SET stock = stock + 1 WHERE id = :id"), {"id": shop.radio}
        )
        invalidate_after_commit(db.session, "productos")
        db.session.commit()
    return [("productos", "bulk", None, None)]


def bulk_update(shop: Shop) -> list[tuple]:
    with shop.app_a.app_context():
        db.session.execute(update(Producto).where(Producto.id == shop.radio).values(stock=7))
        db.session.commit()
    return [("productos", "bulk", None, None)]


def radio_rows(*families: str) -> Callable[[Shop], set[tuple[str, int]]]:
    return lambda shop: {(f, shop.radio) for f in families}


BOTH = radio_rows("producto", "lista_productos")
DETAIL = radio_rows("producto")
NONE: Callable[[Shop], set[tuple[str, int]]] = lambda shop: set()  # noqa: E731
CATALOGUE_NAMES = {"lista_productos", "estadisticas_productos"}

# kind -> (write, names invalidated, rows invalidated), spelt out.
WRITES: dict[str, tuple[Callable[[Shop], list[tuple]], set[str], Callable]] = {
    "order placed": (order_placed, PEDIDO_NAMES | {"estadisticas_productos"}, BOTH),
    # Who placed how many orders does not change: the user statistics stay.
    "cancel": (
        estado("cancelado"),
        PEDIDO_NAMES - {"estadisticas_usuarios"} | {"estadisticas_productos"},
        BOTH,
    ),
    # Only the sales and the report read an order's estado: not the catalogue, not users.
    "estado": (estado("confirmado"), PEDIDO_NAMES - {"estadisticas_usuarios"}, NONE),
    "PATCH stock": (patch("stock", 41), {"estadisticas_productos"}, BOTH),
    "PATCH precio": (patch("precio", "12.50"), {"estadisticas_productos"}, BOTH),
    "PATCH descuento": (patch("descuento", 15), set(), BOTH),
    "PATCH nombre": (
        patch("nombre", "Radio Onda Corta"),
        CATALOGUE_NAMES | {"estadisticas_ventas", "productos_vendidos"},
        DETAIL,
    ),
    "PATCH categoria": (
        patch("categoria", "electrodomesticos"),
        CATALOGUE_NAMES | {"estadisticas_ventas", "productos_vendidos"},
        DETAIL,
    ),
    "PATCH activo": (patch("activo", False), CATALOGUE_NAMES | {"reporte_general"}, DETAIL),
    "PATCH descripcion": (patch("descripcion", "De bolsillo"), {"lista_productos"}, DETAIL),
    "create": (create, PRODUCTO_READERS, lambda shop: {("producto", shop.created)}),
    "delete": (delete, PRODUCTO_READERS, lambda shop: {("producto", shop.lampara)}),
    "raw SQL": (raw_sql, PRODUCTO_READERS | {"producto"}, NONE),
    "bulk update": (bulk_update, PRODUCTO_READERS | {"producto"}, NONE),
}


def declared(changes: list[tuple]) -> tuple[set[str], set[tuple[str, Any]]]:
    """What the registry's declarations say these changes invalidate."""
    names: set[str] = set()
    rows: set[tuple[str, Any]] = set()
    for table, change, row, columns in changes:
        found = targets(table, change, row, None if columns is None else frozenset(columns))
        names |= found[0]
        rows |= found[1]
    return names, {(n, r) for n, r in rows if n not in names}


@pytest.mark.parametrize("kind", WRITES)
def test_each_write_invalidates_what_it_changed_and_every_read_is_fresh(shop, kind):
    write, want_names, want_rows = WRITES[kind]
    warm(shop)
    names, rows, stop = recording(shop.app_a)
    try:
        changes = write(shop)
    finally:
        stop()
    assert (names, rows) == (want_names, want_rows(shop))
    assert (names, rows) == declared(changes)
    assert names <= set(REGISTRY)
    check_reads(shop, names, rows)


def test_a_stock_change_keeps_every_page_id_list(shop):
    """After an order, every page refills one fragment; no page recomputes its ids."""
    warm(shop)
    with shop.app_a.app_context():
        before = shop.app_a.extensions["electro_isla.cache"].get_stats()["families"]
    place_order(shop, shop.radio, 1)
    for url in PAGES:
        assert shop.b.get(url).status_code == 200
    with shop.app_a.app_context():
        after = shop.app_a.extensions["electro_isla.cache"].get_stats()["families"]
    # The radio's fragment is shared by every page showing it: the first page
    # refills it, the others find it; no page recomputes its id list.
    assert after["lista_productos"]["fetches"] - before["lista_productos"]["fetches"] == 1
    assert (
        after["lista_productos"]["invalidations"] - before["lista_productos"]["invalidations"] == 1
    )
