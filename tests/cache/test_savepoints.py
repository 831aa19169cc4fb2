"""Savepoints and legacy bulk methods: invalidation follows the outermost COMMIT.

Real PostgreSQL + Redis (a single server, then a 3-master Cluster); two app
instances share it, as two workers do.
SQLAlchemy fires `after_rollback` on a savepoint's rollback and `after_commit`
on its release; neither may decide what the outermost transaction does.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from tests.cache.support import add_producto


def nombre_via_api(app, producto_id: int) -> tuple[str, str]:
    response = app.test_client().get(f"/api/productos/{producto_id}/")
    assert response.status_code == 200
    return response.get_json()["nombre"], response.headers["X-Cache"]


def invalidations(app) -> dict[str, int]:
    with app.app_context():
        families = cache_manager.get_stats()["families"]
    return {name: f["invalidations"] for name, f in families.items()}


def failing_savepoint() -> None:
    """A savepoint whose INSERT violates a CHECK constraint, rolled back and caught."""
    with pytest.raises(IntegrityError), _db.session.begin_nested():
        _db.session.add(Producto(nombre="Malo", precio=Decimal("-1"), stock=1, categoria="otros"))
        _db.session.flush()


def test_a_failed_savepoint_keeps_the_outer_rename_pending(make_app, redis_mode):
    writer, reader = make_app(**redis_mode), make_app(**redis_mode)
    producto_id = add_producto(writer, nombre="Radio")
    assert nombre_via_api(reader, producto_id) == ("Radio", "MISS")
    assert nombre_via_api(reader, producto_id) == ("Radio", "HIT")
    with writer.app_context():
        _db.session.get(Producto, producto_id).nombre = "Radio FM"
        failing_savepoint()
        _db.session.commit()
    assert nombre_via_api(reader, producto_id) == ("Radio FM", "MISS")


def test_a_released_savepoint_invalidates_only_when_the_outer_transaction_commits(
    make_app, redis_mode
):
    writer, reader = make_app(**redis_mode), make_app(**redis_mode)
    producto_id = add_producto(writer, nombre="Radio")
    assert nombre_via_api(reader, producto_id)[0] == "Radio"
    with writer.app_context():
        with _db.session.begin_nested():
            _db.session.get(Producto, producto_id).nombre = "Radio FM"
        # Released, not committed: another worker reads (and caches) the old row now.
        assert nombre_via_api(reader, producto_id)[0] == "Radio"
        _db.session.commit()
    assert nombre_via_api(reader, producto_id)[0] == "Radio FM"


def test_a_released_savepoint_then_outer_rollback_invalidates_nothing(make_app, redis_mode):
    app = make_app(**redis_mode)
    producto_id = add_producto(app, nombre="Radio")
    assert nombre_via_api(app, producto_id)[0] == "Radio"
    before = invalidations(app)
    with app.app_context():
        with _db.session.begin_nested():
            _db.session.get(Producto, producto_id).nombre = "Radio FM"
        _db.session.rollback()
    assert invalidations(app) == before
    assert nombre_via_api(app, producto_id) == ("Radio", "HIT")


def test_a_rolled_back_savepoint_forgets_only_its_own_writes(make_app, redis_mode):
    app = make_app(**redis_mode)
    kept, dropped = add_producto(app, nombre="Radio"), add_producto(app, nombre="Tele")
    for producto_id in (kept, dropped):
        assert nombre_via_api(app, producto_id)[1] == "MISS"
    with app.app_context():
        _db.session.get(Producto, kept).nombre = "Radio FM"
        _db.session.flush()
        try:
            with _db.session.begin_nested():
                _db.session.get(Producto, dropped).nombre = "Tele HD"
                _db.session.flush()
                raise RuntimeError("undo the savepoint")
        except RuntimeError:
            pass
        _db.session.commit()
    assert nombre_via_api(app, kept) == ("Radio FM", "MISS")
    assert nombre_via_api(app, dropped) == ("Tele", "HIT")


def test_bulk_update_mappings_invalidates(make_app, redis_mode):
    writer, reader = make_app(**redis_mode), make_app(**redis_mode)
    producto_id = add_producto(writer, "10.00")
    assert reader.test_client().get(f"/api/productos/{producto_id}/").get_json()["precio"] == 10.0
    with writer.app_context():
        _db.session.bulk_update_mappings(Producto, [{"id": producto_id, "precio": Decimal("12")}])
        _db.session.commit()
    response = reader.test_client().get(f"/api/productos/{producto_id}/")
    assert response.get_json()["precio"] == 12.0
    assert response.headers["X-Cache"] == "MISS"
