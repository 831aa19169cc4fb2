"""Composed catalogue pages (cache/composed.py): no stale page, one round trip, every store.

Real PostgreSQL and Redis; the in-process case on SQLite with SimpleCache.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from electro_isla.cache.composed import ComposedPages
from electro_isla.catalogo import service
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from tests.cache.support import add_producto, counting_round_trips, manager_of, raw_redis

PAGE = "/api/productos/"


def set_stock(app, producto_id: int, stock: int) -> None:
    with app.app_context():
        db.session.get(Producto, producto_id).stock = stock
        db.session.commit()


def stock_on_page(response, producto_id: int) -> int:
    return next(p["stock"] for p in response.json["results"] if p["id"] == producto_id)


def slow_list_reader_against_stock_write(make_app, monkeypatch) -> dict:
    """A page reader fetches a row's pre-commit data, is held while a stock write commits, stores.

    Returns what the reader answered and what the next read answers on another
    worker and on a cache-less one (the database).
    """
    app_a, app_b, truth = make_app(), make_app(), make_app(CACHE_ENABLED=False)
    radio = add_producto(app_a, "10.00", nombre="Radio", stock=50)
    add_producto(app_a, "20.00", nombre="Nevera", stock=5)
    client = app_a.test_client()
    assert client.get(PAGE).headers["X-Cache"] == "MISS"
    assert client.get(PAGE).headers["X-Cache"] == "HIT"
    set_stock(app_a, radio, 40)  # the radio's fragment is gone; the id list stays

    fetched, release = threading.Event(), threading.Event()
    original = service.filas_productos
    slow_once = [True]

    def slow_rows(ids):  # noqa: ANN001, ANN202
        rows = original(ids)  # pre-commit data: stock 40
        if slow_once and slow_once.pop():
            fetched.set()
            assert release.wait(10)
        return rows

    monkeypatch.setattr(service, "filas_productos", slow_rows)
    out: dict = {}

    def reader() -> None:
        out["reader"] = client.get(PAGE)

    thread = threading.Thread(target=reader)
    thread.start()
    assert fetched.wait(10)
    set_stock(app_a, radio, 30)  # the writer commits while the reader holds stock 40
    release.set()
    thread.join(10)
    out["reader_stock"] = stock_on_page(out["reader"], radio)
    out["next"] = app_b.test_client().get(PAGE)
    out["truth"] = truth.test_client().get(PAGE)
    out["next_stock"] = stock_on_page(out["next"], radio)
    return out


def test_slow_list_reader_cannot_store_a_stale_row_where_later_readers_look(make_app, monkeypatch):
    out = slow_list_reader_against_stock_write(make_app, monkeypatch)
    assert out["reader"].headers["X-Cache"] == "MISS"  # the id list hit, the fragment did not
    assert out["reader_stock"] == 40  # it began before the write: old data is fine for it
    assert out["next_stock"] == 30
    assert out["next"].data == out["truth"].data
    assert out["next"].headers["ETag"] == out["truth"].headers["ETag"]


def test_the_interleaving_catches_pages_that_read_row_versions_after_fetching(
    make_app, monkeypatch
):
    """Control: a page that takes its rows' generations after the fetch serves the stale row."""
    original = ComposedPages.complete

    def late(self, name, found, fetch_rows, render_row, shown, direct):  # noqa: ANN001, ANN202
        wanted = sorted(found.missing)
        rows = fetch_rows(wanted)
        gen_key = self.reads.parts.keys.gen_key(name)
        gens = self.reads.parts.store.generations([gen_key] + [f"{gen_key}:{r}" for r in wanted])
        found.missing = {r: f"{gens[0]}.{g}" for r, g in zip(wanted, gens[1:], strict=True)}
        return original(self, name, found, lambda ids: rows, render_row, shown, direct)

    monkeypatch.setattr(ComposedPages, "complete", late)
    out = slow_list_reader_against_stock_write(make_app, monkeypatch)
    assert out["next_stock"] == 40  # stale: the bug the real pages do not have


@pytest.mark.parametrize("url", [PAGE, "/api/productos/?categoria=otros&q=radio&page_size=5"])
def test_a_page_hit_is_one_redis_round_trip(app, monkeypatch, url):
    for n in range(7):
        add_producto(app, f"{n + 1}.00", nombre=f"Radio {n}")
    client = app.test_client()
    assert client.get(url).headers["X-Cache"] == "MISS"
    calls = counting_round_trips(app, monkeypatch)
    hit = client.get(url)  # joined from the fragments (and kept as the page memo)
    assert hit.headers["X-Cache"] == "HIT" and len(hit.json["results"]) == (5 if "q=" in url else 7)
    assert calls == ["EVALSHA"]
    memo = client.get(url)  # read from the memo: the same bytes and tag
    assert calls == ["EVALSHA", "EVALSHA"]
    assert (memo.headers["X-Cache"], memo.data, memo.headers["ETag"]) == (
        "HIT",
        hit.data,
        hit.headers["ETag"],
    )
    prefix = app.config["CACHE_KEY_PREFIX"]
    assert len(list(raw_redis(app).scan_iter(f"{prefix}:v:{{lista_productos}}:-:*|page"))) == 1


def test_missing_fragments_are_filled_in_one_query(app):
    from tests.estadisticas.test_estadisticas_queries import counting

    ids = [add_producto(app, f"{n + 1}.00", nombre=f"Radio {n}") for n in range(6)]
    client = app.test_client()
    client.get(PAGE)
    for producto_id in ids[:3]:
        set_stock(app, producto_id, 1)
    with counting(app) as statements:
        page = client.get(PAGE)
    assert page.headers["X-Cache"] == "MISS"
    assert [stock_on_page(page, p) for p in ids] == [1, 1, 1, 5, 5, 5]
    assert len(statements) == 1 and " IN " in statements[0]


def test_pages_without_the_script_take_the_same_steps(app, monkeypatch):
    """The page lookup's steps as separate calls (what the in-process store runs): same answers."""
    monkeypatch.setattr(manager_of(app).store, "page_script", None)
    radio = add_producto(app, "10.00", stock=50)
    client = app.test_client()
    first, second = client.get(PAGE), client.get(PAGE)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    set_stock(app, radio, 3)
    third = client.get(PAGE)
    assert third.headers["X-Cache"] == "MISS" and stock_on_page(third, radio) == 3


def test_in_process_pages_keep_the_id_list_and_refill_one_row(sqlite_app):
    radio = add_producto(sqlite_app, "10.00", stock=50)
    otro = add_producto(sqlite_app, "20.00", nombre="Nevera", stock=5)
    client = sqlite_app.test_client()
    first, second = client.get(PAGE), client.get(PAGE)
    assert manager_of(sqlite_app).backend_name == "simple"
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    with sqlite_app.app_context():
        before = manager_of(sqlite_app).get_stats()["families"]["lista_productos"]
        producto = db.session.get(Producto, radio)
        producto.precio = Decimal("11.00")
        db.session.commit()
    fresh = client.get(PAGE)
    with sqlite_app.app_context():
        after = manager_of(sqlite_app).get_stats()["families"]["lista_productos"]
    assert fresh.headers["X-Cache"] == "MISS"
    assert [p["precio"] for p in fresh.json["results"]] == [11.0, 20.0]
    assert after["fetches"] - before["fetches"] == 1  # the radio's row, not the id list
    assert client.get(PAGE).headers["X-Cache"] == "HIT"
    assert otro


def test_a_row_that_left_the_page_after_its_id_list_was_read_is_answered_from_the_database(app):
    """The id list was read just before an activo change's bump: the page comes from the database.

    Simulated without timing: the row is deactivated by raw SQL (no bump of the
    id lists) and only its fragment is invalidated, so the cached id list still
    names a row the fill finds inactive.
    """
    from sqlalchemy import text

    radio = add_producto(app, "10.00")
    add_producto(app, "20.00", nombre="Nevera")
    client = app.test_client()
    assert client.get(PAGE).json["count"] == 2
    with app.app_context():
        db.session.execute(
            text("UPDATE productos SET activo = false WHERE id = :id"), {"id": radio}
        )
        db.session.commit()
        manager_of(app).invalidate(rows=[("lista_productos", radio)])
    page = client.get(PAGE)
    assert page.status_code == 200
    assert page.json["count"] == 1 and [p["nombre"] for p in page.json["results"]] == ["Nevera"]
