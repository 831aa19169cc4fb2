"""Freshness: no stale set, invalidation after COMMIT only, bulk and raw-SQL writes.

All on real PostgreSQL + Redis, each test once on a single Redis and once on a
3-master Redis Cluster (`app` is `redis_mode_app` here). Each thread has its own app context, hence its
own SQLAlchemy session and connection, like two concurrent requests.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import text, update

from electro_isla.cache import cache_manager, invalidate_after_commit
from electro_isla.cache.listeners import PENDING
from electro_isla.cache.reads import ReadPipeline
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from tests.cache.support import add_producto, manager_of, producto_fields, raw_redis


@pytest.fixture
def app(redis_mode_app):
    return redis_mode_app


def _precio(app, producto_id: int) -> float:
    with app.app_context():
        return cache_manager.get("producto", lambda: producto_fields(producto_id), row=producto_id)[
            "precio"
        ]


def slow_reader_against_writer(app, producto_id: int) -> dict:
    """Reader reads generations and pre-commit data, is held while a writer commits, then stores.

    Returns what the reader got, what the next reader gets, and the raw keys.
    """
    fetched, release = threading.Event(), threading.Event()
    out: dict = {}

    def slow_fetch():
        data = producto_fields(producto_id)  # pre-commit data: precio 10
        fetched.set()
        assert release.wait(10)
        return data

    def reader():
        with app.app_context():
            out["reader"] = cache_manager.get("producto", slow_fetch, row=producto_id)["precio"]
            _db.session.remove()

    thread = threading.Thread(target=reader)
    thread.start()
    assert fetched.wait(10)
    with app.app_context():  # the writer: commits while the reader holds old data
        _db.session.get(Producto, producto_id).precio = Decimal("20.00")
        _db.session.commit()
    release.set()
    thread.join(10)
    out["next"] = _precio(app, producto_id)
    out["keys"] = sorted(
        k.decode() for k in raw_redis(app).scan_iter(f"{app.config['CACHE_KEY_PREFIX']}:v:*")
    )
    return out


def test_slow_reader_cannot_store_pre_commit_data_where_later_readers_look(app):
    producto_id = add_producto(app, "10.00")
    out = slow_reader_against_writer(app, producto_id)
    assert out["reader"] == 10.0  # it began before the write: old data is fine for it
    # It did store its stale value (two keys exist: its own and the fresh one) ...
    assert len(out["keys"]) == 2
    # ... but under a generation nobody asks for any more: the next read is fresh.
    assert out["next"] == 20.0


def test_the_interleaving_catches_a_manager_that_reads_generations_after_fetching(app, monkeypatch):
    """Control: the same interleaving against a broken manager serves stale data.

    This is what makes the test above a proof: if the generations were read
    after the fetch (or not at all), the pre-commit value would be found.
    """

    def late_fill(self, spec, key, fetch, record):  # noqa: ANN001, ANN202
        value = self.fetch(spec.entry, key, fetch)
        late_key = self.parts.keys.value_key(spec, self.parts.store.generations(spec.gen_keys))
        self.parts.store.set(late_key, value, 60)
        return value

    monkeypatch.setattr(ReadPipeline, "fill", late_fill)
    producto_id = add_producto(app, "10.00")
    out = slow_reader_against_writer(app, producto_id)
    assert out["next"] == 10.0  # stale: the bug the real manager does not have


def test_rollback_discards_collected_invalidations(app):
    producto_id = add_producto(app, "10.00")
    assert _precio(app, producto_id) == 10.0
    before = cache_manager_stats(app)
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("99.00")
        _db.session.flush()
        assert _db.session.info.get(PENDING)  # collected while the transaction is open
        _db.session.rollback()
        assert not _db.session.info.get(PENDING)
    after = cache_manager_stats(app)
    assert after["invalidations"] == before["invalidations"]
    assert _precio(app, producto_id) == 10.0
    assert cache_manager_stats(app)["families"]["producto"]["hits"] == (
        before["families"]["producto"]["hits"] + 1
    )  # still warm: served from the cache


def test_commit_applies_collected_invalidations(app):
    producto_id = add_producto(app, "10.00")
    other_id = add_producto(app, "30.00", nombre="Otro")
    assert _precio(app, producto_id) == 10.0
    assert _precio(app, other_id) == 30.0
    before = cache_manager_stats(app)["families"]["producto"]
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("11.00")
        _db.session.commit()
    after = cache_manager_stats(app)["families"]["producto"]
    assert after["invalidations"] == before["invalidations"] + 1  # that row only
    assert _precio(app, producto_id) == 11.0
    assert _precio(app, other_id) == 30.0
    fam = cache_manager_stats(app)["families"]["producto"]
    assert fam["fetches"] == after["fetches"] + 1  # the other row stayed cached


def cache_manager_stats(app) -> dict:
    with app.app_context():
        return cache_manager.get_stats()


def test_bulk_orm_update_invalidates_rows_and_lists(app):
    producto_id = add_producto(app, "10.00")
    with app.app_context():
        lista = lambda: [p.stock for p in _db.session.scalars(_db.select(Producto))]  # noqa: E731
        assert cache_manager.get("lista_productos", lista) == [5]
    assert _precio(app, producto_id) == 10.0
    with app.app_context():
        _db.session.execute(update(Producto).values(precio=Decimal("12.00"), stock=7))
        _db.session.commit()
    assert _precio(app, producto_id) == 12.0
    with app.app_context():
        assert cache_manager.get("lista_productos", lista) == [7]


def test_core_update_on_the_table_through_the_session_invalidates(app):
    producto_id = add_producto(app, "10.00")
    assert _precio(app, producto_id) == 10.0
    with app.app_context():
        _db.session.execute(update(Producto.__table__).values(precio=Decimal("13.00")))
        _db.session.commit()
    assert _precio(app, producto_id) == 13.0


def test_raw_sql_needs_the_helper_and_the_helper_works(app):
    producto_id = add_producto(app, "10.00")
    assert _precio(app, producto_id) == 10.0
    with app.app_context():
        _db.session.execute(text("UPDATE productos SET precio = 14"))
        _db.session.commit()
    assert _precio(app, producto_id) == 10.0  # invisible to the listeners: TTL-bound
    with app.app_context():
        _db.session.execute(text("UPDATE productos SET precio = 15"))
        invalidate_after_commit(_db.session, "productos")
        _db.session.commit()
    assert _precio(app, producto_id) == 15.0


def test_helper_then_rollback_invalidates_nothing(app):
    producto_id = add_producto(app, "10.00")
    assert _precio(app, producto_id) == 10.0
    before = cache_manager_stats(app)["invalidations"]
    with app.app_context():
        invalidate_after_commit(_db.session, "productos")
        _db.session.rollback()
    assert cache_manager_stats(app)["invalidations"] == before


def test_uncommitted_writes_are_never_stored_for_others(app):
    """A miss inside a writing transaction returns its own view but stores nothing."""
    producto_id = add_producto(app, "10.00")
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("77.00")
        _db.session.flush()
        seen = cache_manager.get("producto", lambda: producto_fields(producto_id), row=producto_id)
        assert seen["precio"] == 77.0
        _db.session.rollback()
    assert _precio(app, producto_id) == 10.0  # not the rolled-back 77
    prefix = app.config["CACHE_KEY_PREFIX"]
    assert len(list(raw_redis(app).scan_iter(f"{prefix}:v:*"))) == 1


def test_in_process_cache_invalidates_after_commit_too(sqlite_app):
    producto_id = add_producto(sqlite_app, "10.00")
    assert manager_of(sqlite_app).backend_name == "simple"
    assert _precio(sqlite_app, producto_id) == 10.0
    with sqlite_app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("21.00")
        _db.session.commit()
    assert _precio(sqlite_app, producto_id) == 21.0


@pytest.mark.parametrize("row", [None, 1])
def test_row_argument_must_match_the_registry(app, row):
    name = "producto" if row is None else "lista_productos"
    with app.app_context(), pytest.raises(ValueError):
        cache_manager.get(name, dict, row=row)
