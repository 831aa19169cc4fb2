"""The host-shared record of failed invalidations: no key is lost between workers."""

from __future__ import annotations

import threading

from electro_isla.cache.pending import PendingInvalidations, SharedPending


def test_keys_added_by_one_worker_are_seen_and_replayed_by_another(tmp_path):
    path = tmp_path / "p.pending"
    worker_a, worker_b = PendingInvalidations(path), PendingInvalidations(path)
    assert worker_b.empty()
    worker_a.add({"gen:producto:1", "gen:lista_productos"})
    assert not worker_b.empty()
    seen = worker_b.snapshot()
    assert seen.keys == {"gen:producto:1", "gen:lista_productos"}
    worker_a.add({"gen:producto:2"})  # arrives while B replays
    worker_b.done(seen)
    assert worker_a.snapshot().keys == {"gen:producto:2"}
    worker_a.done(worker_a.snapshot())
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
                replayed.update(keys.keys)
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
    assert not pending.empty() and pending.snapshot().keys == {"k"}
    pending.done(pending.snapshot())
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


# Finding 11: a key added again after a replay's snapshot must survive that replay.


def test_a_key_added_again_after_the_snapshot_survives_the_replay_file(tmp_path):
    path = tmp_path / "p.pending"
    worker_x, worker_y = PendingInvalidations(path), PendingInvalidations(path)
    worker_y.add({"gen:{producto}:1"})
    seen = worker_x.snapshot()  # X replays what it saw ...
    worker_y.add({"gen:{producto}:1"})  # ... while Y's bump of the same key fails again
    worker_x.done(seen)
    assert worker_y.snapshot().keys == {"gen:{producto}:1"}
    assert not worker_y.empty()


def test_a_key_added_again_after_the_snapshot_survives_the_replay_memory():
    pending = PendingInvalidations(None)
    pending.add({"k"})
    seen = pending.snapshot()
    pending.add({"k"})  # another thread of the process
    pending.done(seen)
    assert pending.snapshot().keys == {"k"}


def test_the_shared_table_is_seen_by_every_host_and_keeps_re_added_keys(app):
    from electro_isla.extensions import db

    with app.app_context():
        engine = db.engine
    host_a = PendingInvalidations(None, SharedPending(lambda: engine, "pfx-a", 0.0))
    host_b = PendingInvalidations(None, SharedPending(lambda: engine, "pfx-a", 0.0))
    other_app = PendingInvalidations(None, SharedPending(lambda: engine, "pfx-b", 0.0))
    assert host_b.empty()
    host_a.add({"gen:{producto}:1", "gen:{lista_productos}"})
    assert not host_b.empty() and other_app.empty()
    seen = host_b.snapshot()
    assert seen.keys == {"gen:{producto}:1", "gen:{lista_productos}"}
    host_a.add({"gen:{producto}:1"})  # lost again while B replays
    host_b.done(seen)
    assert host_a.snapshot().keys == {"gen:{producto}:1"}
    host_a.done(host_a.snapshot())
    assert host_a.empty() and host_b.empty()


def test_the_shared_table_is_asked_at_most_once_per_interval(app):
    from sqlalchemy import event

    from electro_isla.extensions import db

    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        pending = PendingInvalidations(None, SharedPending(lambda: engine, "pfx-c", 60.0))
        for _ in range(100):
            assert pending.empty()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 1
