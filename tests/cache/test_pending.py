"""The host-shared record of failed invalidations: no key is lost between workers."""

from __future__ import annotations

import threading

from electro_isla.cache.pending import PendingInvalidations


def test_keys_added_by_one_worker_are_seen_and_replayed_by_another(tmp_path):
    path = tmp_path / "p.pending"
    worker_a, worker_b = PendingInvalidations(path), PendingInvalidations(path)
    assert worker_b.empty()
    worker_a.add({"gen:producto:1", "gen:lista_productos"})
    assert not worker_b.empty()
    seen = worker_b.snapshot()
    assert seen == {"gen:producto:1", "gen:lista_productos"}
    worker_a.add({"gen:producto:2"})  # arrives while B replays
    worker_b.done(seen)
    assert worker_a.snapshot() == {"gen:producto:2"}
    worker_a.done({"gen:producto:2"})
    assert worker_a.empty() and worker_b.empty()
    assert not path.exists()


def test_concurrent_adds_and_replays_lose_nothing(tmp_path):
    path = tmp_path / "p.pending"
    adder, replayer = PendingInvalidations(path), PendingInvalidations(path)
    replayed: set[str] = set()
    stop = threading.Event()

    def replay() -> None:
        while not stop.is_set() or not replayer.empty():
            keys = replayer.snapshot()
            if keys:
                replayed.update(keys)
                replayer.done(keys)

    thread = threading.Thread(target=replay)
    thread.start()
    added = {f"gen:producto:{i}" for i in range(400)}
    for key in sorted(added):
        adder.add({key})
    stop.set()
    thread.join(20)
    assert replayed == added


def test_without_a_file_the_process_remembers_in_memory():
    pending = PendingInvalidations(None)
    pending.add({"k"})
    assert not pending.empty() and pending.snapshot() == {"k"}
    pending.done({"k"})
    assert pending.empty()


def test_disabled_cache_bypasses_and_keeps_no_pending_record(make_app, tmp_path):
    from decimal import Decimal

    from electro_isla.catalogo.models import Producto
    from electro_isla.extensions import db
    from tests.cache.support import add_probe, add_producto, manager_of

    app = add_probe(make_app(CACHE_ENABLED=False, CACHE_PENDING_DIR=str(tmp_path / "p")))
    producto_id = add_producto(app)
    with app.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("2.00")
        db.session.commit()
    response = app.test_client().get(f"/_probe/productos/{producto_id}")
    assert response.headers["X-Cache"] == "BYPASS"
    assert response.json["precio"] == 2.0
    assert manager_of(app).pending_invalidations == 0
    assert not (tmp_path / "p").exists()
