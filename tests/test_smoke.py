from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto


def test_app_on_real_servers_caches_and_invalidates_after_commit(app, db):
    calls = []

    def fetch():
        calls.append(1)
        return [p.nombre for p in db.session.scalars(db.select(Producto).order_by(Producto.id))]

    assert cache_manager.backend_name == "redis"
    assert db.engine.dialect.name == "postgresql"
    assert cache_manager.get("lista_productos", fetch) == []
    assert cache_manager.get("lista_productos", fetch) == []
    assert len(calls) == 1
    db.session.add(Producto(nombre="Radio", precio="10.00", stock=1, categoria="otros"))
    db.session.flush()
    assert cache_manager.get("lista_productos", fetch) == []  # not committed yet: still cached
    db.session.commit()
    assert cache_manager.get("lista_productos", fetch) == ["Radio"]
    assert len(calls) == 2
