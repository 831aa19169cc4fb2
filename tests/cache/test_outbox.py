"""The transactional outbox: effects recorded in the writer's transaction, drained by anyone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import jwt as pyjwt
import pytest
import redis as redis_lib
from sqlalchemy import event, select
from sqlalchemy import exc as sqlalchemy_exc

from electro_isla.auth.tokens import revocation_keys
from electro_isla.cache import outbox as outbox_module
from electro_isla.cache.models import OutboxEntry
from electro_isla.cache.outbox import Effect, Outbox, register_applier
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from tests.auth.support import bearer, login, make_usuario
from tests.cache.support import add_probe, add_producto, manager_of, raw_redis


def outbox_rows(app) -> list[tuple[str, str]]:
    manager_of(app).outbox.deleter.settle()  # what this process applied is deleted off-thread
    with app.app_context():
        return [
            (r.kind, r.target)
            for r in db.session.scalars(
                select(OutboxEntry).where(OutboxEntry.prefix == app.config["CACHE_KEY_PREFIX"])
            )
        ]


def dies_after_commit(app, monkeypatch) -> None:
    """This 'process' commits, then never applies anything (as if killed right after COMMIT)."""
    monkeypatch.setattr(manager_of(app), "apply_committed", lambda effects: None)


@contextmanager
def deletes_held(outbox: Outbox) -> Iterator[threading.Event]:
    """The deleter thread holds every batch until the yielded event is set (or 5 s)."""
    release = threading.Event()
    delete_now = outbox.deleter.delete_now

    def held(ids: list[int]) -> None:
        release.wait(5)
        delete_now(ids)

    outbox.deleter.delete_now = held
    try:
        yield release
    finally:
        release.set()
        outbox.deleter.delete_now = delete_now


def test_the_rows_are_written_in_the_writers_transaction_and_deleted_once_applied(app):
    producto_id = add_producto(app, "10.00")
    # add_producto's own rows are deleted off-thread: gone before anything is looked at
    # (a loaded CI machine once showed them to the "outside" connection below).
    manager_of(app).outbox.deleter.settle()
    table = OutboxEntry.__table__
    query = select(table.c.kind, table.c.target)
    inside: list[list[tuple[str, str]]] = []
    outside: list[list[tuple[str, str]]] = []

    def look(session) -> None:  # runs after the outbox's own before_commit hook
        inside.append([tuple(r) for r in session.connection().execute(query)])
        with db.engine.connect() as other:
            outside.append([tuple(r) for r in other.execute(query)])

    with app.app_context():
        gen_key = manager_of(app).gen_key("producto", producto_id)
        before = raw_redis(app).get(gen_key)
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        event.listen(db.session(), "before_commit", look)
        db.session.commit()
    assert ("bump", gen_key) in inside[0]  # in the writer's transaction ...
    assert outside == [[]]  # ... and nowhere else before its COMMIT
    assert outbox_rows(app) == []  # applied and deleted by the writer after it
    with app.app_context():
        assert raw_redis(app).get(gen_key) != before


def test_the_writer_does_not_wait_for_its_rows_to_be_deleted(app):
    """The delete runs on the deleter thread: the writer's commit ends at Redis's answer."""
    producto_id = add_producto(app, "10.00")
    manager_of(app).outbox.deleter.settle()
    on_writer: list[str] = []
    writer = threading.get_ident()

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if threading.get_ident() == writer:
            on_writer.append(statement)

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            db.session.get(Producto, producto_id).precio = Decimal("30.00")
            db.session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert any("INSERT INTO cache_pending" in s for s in on_writer)
    assert not any("cache_pending_done" in s or "DELETE" in s for s in on_writer)
    assert outbox_rows(app) == []  # deleted all the same, once the thread has run


def test_a_row_whose_delete_ends_during_the_drain_read_is_not_applied_again(app):
    """The drain's read may see a row this process is deleting; when that delete
    ends before the read is filtered, the row must still count as this process's
    (seen in CI: a test's own earlier write re-invalidated during its first read)."""
    outbox = manager_of(app).outbox
    with deletes_held(outbox) as release:
        add_producto(app, "10.00")  # applied; its rows wait in the deleter
        assert outbox.deleter.unfinished()
        reader = threading.get_ident()

        def delete_ends_now(conn, cursor, statement, *args) -> None:  # noqa: ANN001
            if threading.get_ident() == reader and "SELECT cache_pending.id" in statement:
                release.set()
                assert outbox.deleter.settle()

        with app.app_context():
            engine = db.engine
            event.listen(engine, "after_cursor_execute", delete_ends_now)
            try:
                ids, effects = outbox.rows()
            finally:
                event.remove(engine, "after_cursor_execute", delete_ends_now)
        assert release.is_set()  # the read did run while the delete was under way
        assert (ids, effects) == ([], [])


def _generation(app, key: str) -> int:
    with app.app_context():
        return int(raw_redis(app).get(key))


def test_a_drain_that_gets_there_before_the_writer_bumps_each_row_once(make_app, monkeypatch):
    """Between a writer's COMMIT and its own apply, another worker's drain may apply the
    same rows: the generation still moves once, not twice (bench/live.py measured 1.063
    bumps per order before, each extra one a second fetch of every statistic)."""
    writer, other = make_app(CACHE_PENDING_CHECK_MS=0), make_app(CACHE_PENDING_CHECK_MS=0)
    producto_id = add_producto(writer, "10.00")
    manager = manager_of(writer)
    gen_key = manager.gen_key("producto", producto_id)
    own_apply = manager.apply_committed
    drained: list[int] = []

    def drained_first(*args) -> None:  # noqa: ANN002
        drained.append(manager_of(other).outbox.drain())
        own_apply(*args)

    monkeypatch.setattr(manager, "apply_committed", drained_first)
    before = _generation(writer, gen_key)
    with writer.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        db.session.commit()
    assert drained and drained[0] > 0  # the other worker did apply the rows first
    assert _generation(writer, gen_key) == before + 1
    assert outbox_rows(writer) == []


def test_a_drain_that_reads_rows_the_writer_applied_bumps_nothing_again(make_app):
    """The writer applied its rows; their delete has not run when another worker drains."""
    writer, other = make_app(CACHE_PENDING_CHECK_MS=0), make_app(CACHE_PENDING_CHECK_MS=0)
    producto_id = add_producto(writer, "10.00")
    outbox = manager_of(writer).outbox
    gen_key = manager_of(writer).gen_key("producto", producto_id)
    with deletes_held(outbox):
        with writer.app_context():
            db.session.get(Producto, producto_id).precio = Decimal("20.00")
            db.session.commit()
        after_writer = _generation(writer, gen_key)
        assert manager_of(other).outbox.drain() > 0  # read before the writer's delete
        assert _generation(writer, gen_key) == after_writer
    assert outbox_rows(writer) == []


def test_a_server_that_forgot_the_bump_script_still_takes_every_bump(app):
    """A restarted or promoted server has no scripts: the bump loads it and moves once."""
    producto_id = add_producto(app, "10.00")
    gen_key = manager_of(app).gen_key("producto", producto_id)
    before = _generation(app, gen_key)
    with app.app_context():
        raw_redis(app).script_flush()
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        db.session.commit()
    assert _generation(app, gen_key) == before + 1
    assert outbox_rows(app) == []


def test_sqlite_with_redis_moves_every_commit_though_it_gives_row_ids_again(
    make_sqlite_app, redis_url
):
    """SQLite gives a deleted outbox row's id to the next row: a mark naming the id
    alone took a later commit's bump for one already applied (A, then B, then A: the
    third left A's generation where the first had put it)."""
    app = make_sqlite_app(REDIS_URL=redis_url)
    first, second = add_producto(app, "10.00"), add_producto(app, "11.00")
    gen_key = manager_of(app).gen_key("producto", first)
    before = _generation(app, gen_key)
    for n, (producto, precio) in enumerate([(first, "20.00"), (second, "21.00"), (first, "22.00")]):
        with app.app_context():
            db.session.get(Producto, producto).precio = Decimal(precio)
            db.session.commit()
        assert _generation(app, gen_key) == before + (1 if n < 2 else 2), n


def test_a_bump_that_fails_in_redis_leaves_its_rows_to_move_the_generation_later(app):
    """The script marks a row only once the INCR went through: a failing INCR (a key of
    another type) must not leave the row taken for applied when it is applied again."""
    manager = manager_of(app)
    key = manager.gen_key("producto", 424242)
    with app.app_context():
        redis = raw_redis(app)
        redis.hset(key, "not", "a counter")
        with pytest.raises(redis_lib.ResponseError):
            manager.store.bump([key], {key: ["7.1"]})
        redis.delete(key)
        assert manager.store.bump([key], {key: ["7.1"]}) == [key]
        assert manager.store.bump([key], {key: ["7.1"]}) == []  # now applied: once


def test_a_backlog_of_rows_for_one_generation_drains_in_one_bump(app, monkeypatch):
    """Every order bumps the same name-level generations, so a Redis outage of a few
    minutes leaves thousands of rows for one key. Redis's Lua cannot `unpack` 8,000
    values: the script must test the marks one by one, or that backlog never drains
    and the breaker keeps the cache bypassed (found in review)."""
    monkeypatch.setattr(outbox_module, "DRAIN_PAGE", 10_000, raising=False)  # one page
    manager = manager_of(app)
    gen_key = manager.gen_key("producto", 515151)
    with app.app_context():
        raw_redis(app).set(gen_key, 5)
        manager.outbox.add([Effect("bump", gen_key)] * 8_000)
        assert manager.outbox.drain() == 8_000
        manager.outbox.deleter.settle()
        assert int(raw_redis(app).get(gen_key)) == 6
    assert outbox_rows(app) == []


def test_a_backlog_is_drained_a_page_at_a_time(app, monkeypatch):
    """A long outage's backlog is read and sent to Redis in pages, not all at once
    (one worker held every row in memory and sent Redis one script call per key)."""
    monkeypatch.setattr(outbox_module, "DRAIN_PAGE", 10, raising=False)
    manager = manager_of(app)
    keys = [manager.gen_key("producto", 616100 + n) for n in range(25)]
    batches: list[int] = []
    previous = register_applier("bump", lambda a: lambda batch: batches.append(len(batch)))
    try:
        with app.app_context():
            manager.outbox.add([Effect("bump", key) for key in keys])
            assert manager.outbox.drain() == 25
            manager.outbox.deleter.settle()
    finally:
        register_applier("bump", previous)
    assert batches == [10, 10, 5]
    assert outbox_rows(app) == []


def test_a_page_that_cannot_be_read_leaves_redis_untrusted(app, monkeypatch):
    """Page 1 applied, page 2's read fails: the drain must not pass for complete, or
    the caller trusts Redis with bumps and revocations still in the table (found in
    review: it returned 10 and catch_up said True)."""
    monkeypatch.setattr(outbox_module, "DRAIN_PAGE", 10, raising=False)
    manager = manager_of(app)
    keys = [manager.gen_key("producto", 626200 + n) for n in range(25)]
    with app.app_context():
        engine = db.engine
        manager.outbox.add([Effect("bump", key) for key in keys])
    reads: list[str] = []

    def second_read_fails(conn, cursor, statement, *args) -> None:  # noqa: ANN001, ANN002
        if "FROM cache_pending" in statement and "ORDER BY" in statement:  # a page
            reads.append(statement)
            if len(reads) == 2:
                raise sqlalchemy_exc.OperationalError(statement, {}, Exception("gone"))

    event.listen(engine, "before_cursor_execute", second_read_fails)
    try:
        with app.app_context():
            assert manager.invalidation.catch_up() is False
    finally:
        event.remove(engine, "before_cursor_execute", second_read_fails)
    assert len(reads) == 2 and len(outbox_rows(app)) == 15  # page 1 was applied
    with app.app_context():
        assert manager.invalidation.catch_up() is True  # the next one finishes the drain
        manager.outbox.deleter.settle()
    assert outbox_rows(app) == []


def test_a_rollback_discards_the_rows_with_the_write(app):
    producto_id = add_producto(app, "10.00")
    with app.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        db.session.flush()
        db.session.rollback()
    assert outbox_rows(app) == []


def test_a_savepoint_rolled_back_records_nothing_of_its_own(app, monkeypatch):
    kept, dropped = add_producto(app, "10.00"), add_producto(app, "11.00")
    dies_after_commit(app, monkeypatch)
    with app.app_context():
        db.session.get(Producto, kept).stock = 9
        savepoint = db.session.begin_nested()
        db.session.get(Producto, dropped).stock = 8
        savepoint.rollback()
        db.session.commit()
        manager = manager_of(app)
        kept_key, dropped_key = (
            manager.gen_key("producto", kept),
            manager.gen_key("producto", dropped),
        )
    targets = {t for _, t in outbox_rows(app)}
    assert kept_key in targets and dropped_key not in targets


def test_a_writer_that_dies_after_commit_loses_nothing_another_worker_drains_it(
    make_app, monkeypatch
):
    writer = add_probe(make_app(CACHE_PENDING_CHECK_MS=0))
    reader = add_probe(make_app(CACHE_PENDING_CHECK_MS=0))
    producto_id = add_producto(writer, "10.00")
    client = reader.test_client()
    client.get(f"/_probe/productos/{producto_id}")
    assert client.get(f"/_probe/productos/{producto_id}").headers["X-Cache"] == "HIT"
    dies_after_commit(writer, monkeypatch)
    with writer.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        db.session.commit()
    assert outbox_rows(writer)  # what the dead writer owed is in the database
    response = client.get(f"/_probe/productos/{producto_id}")
    assert response.json["precio"] == 20.0
    assert response.headers["X-Cache"] == "MISS"
    assert outbox_rows(reader) == []  # the reader drained them (and deleted them off-thread)


def test_a_logout_whose_process_dies_after_commit_is_refused_by_every_other_worker(
    make_app, monkeypatch
):
    worker_a = make_app(CACHE_PENDING_CHECK_MS=0)
    worker_b = make_app(CACHE_PENDING_CHECK_MS=0)
    make_usuario(worker_a, username="ana")
    a, b = worker_a.test_client(), worker_b.test_client()
    token = login(a, "ana").json["accessToken"]
    assert b.get("/api/auth/me/", headers=bearer(token)).status_code == 200  # B's copy is loaded
    dies_after_commit(worker_a, monkeypatch)
    assert a.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    for revoked in revocation_keys(pyjwt.decode(token, options={"verify_signature": False})):
        assert ("revoke", revoked) in outbox_rows(worker_a)
    assert b.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    assert outbox_rows(worker_b) == []  # B drained it (and deleted it off-thread)


@pytest.mark.parametrize("fault", ["flushall", "delete", "partial"])
def test_the_revocation_copy_is_complete_or_reloaded(make_app, fault):
    app = make_app()
    make_usuario(app, username="ana")
    client = app.test_client()
    token = login(client, "ana").json["accessToken"]
    other = login(client, "ana", ip="10.0.0.2").json["accessToken"]
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    key = f"{app.config['CACHE_KEY_PREFIX']}:auth:revoked"
    with app.app_context():
        redis = raw_redis(app)
        if fault == "flushall":
            redis.flushall()
        elif fault == "delete":
            redis.delete(key)
        else:  # only an add made after the key vanished: no mark, so not trusted
            redis.delete(key)
            redis.zadd(key, {"someone-else": 9e9})
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    assert client.get("/api/auth/me/", headers=bearer(other)).status_code == 200
    with app.app_context():
        assert raw_redis(app).zscore(key, "!complete") is not None  # reloaded whole


def test_the_table_is_seen_by_every_host_and_keeps_rows_added_after_a_drain_read(app):
    with app.app_context():
        engine = db.engine
    host_a = Outbox(app, lambda: engine, "pfx-a", 0.0, durable=True)
    host_b = Outbox(app, lambda: engine, "pfx-a", 0.0, durable=True)
    other_app = Outbox(app, lambda: engine, "pfx-b", 0.0, durable=True)
    assert host_b.empty()
    host_a.add([Effect("bump", "gen:{producto}:1"), Effect("bump", "gen:{lista_productos}")])
    assert not host_b.empty() and other_app.empty()
    ids, effects = host_b.rows()
    assert {e.target for e in effects} == {"gen:{producto}:1", "gen:{lista_productos}"}
    host_a.add([Effect("bump", "gen:{producto}:1")])  # lost again while B applies
    host_b.delete(ids)
    host_b.deleter.settle()  # the delete runs on host B's deleter thread
    assert [e.target for e in host_a.rows()[1]] == ["gen:{producto}:1"]
    host_a.delete(host_a.rows()[0])
    host_a.deleter.settle()
    assert host_a.empty() and host_b.empty()


def test_a_kind_nobody_here_applies_is_left_and_does_not_block_the_others(app):
    """A newer release's kind, met during a rolling deploy: kept for it; the rest drained once."""
    with app.app_context():
        engine = db.engine
    outbox = Outbox(app, lambda: engine, "pfx-d", 0.0, durable=True)
    outbox.add([Effect("futuro", "x"), Effect("bump", "pfx-d:gen:{producto}:1")])
    applied: list[list[Effect]] = []
    previous = register_applier("bump", lambda _app: applied.append)
    try:
        assert outbox.drain() == 1
        outbox.deleter.settle()
        assert outbox.drain() == 0  # nothing applied twice
    finally:
        register_applier("bump", previous)
    assert [[e.target for e in batch] for batch in applied] == [["pfx-d:gen:{producto}:1"]]
    assert [e.kind for e in outbox.rows()[1]] == [] and outbox.count() == 1  # "futuro" kept


def test_the_table_is_asked_at_most_once_per_interval(app):
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        outbox = Outbox(app, lambda: engine, "pfx-c", 60.0, durable=True)
        for _ in range(100):
            assert outbox.empty()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 1


def test_disabled_cache_bypasses_and_keeps_no_pending_record(make_app):
    app = add_probe(make_app(CACHE_ENABLED=False))
    producto_id = add_producto(app)
    with app.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("2.00")
        db.session.commit()
    response = app.test_client().get(f"/_probe/productos/{producto_id}")
    assert response.headers["X-Cache"] == "BYPASS"
    assert response.json["precio"] == 2.0
    assert manager_of(app).pending_invalidations == 0
    assert outbox_rows(app) == []


def test_the_in_process_cache_writes_no_rows_and_still_invalidates(sqlite_app):
    add_probe(sqlite_app)
    producto_id = add_producto(sqlite_app, "10.00")
    client = sqlite_app.test_client()
    client.get(f"/_probe/productos/{producto_id}")
    with sqlite_app.app_context():
        db.session.get(Producto, producto_id).precio = Decimal("20.00")
        db.session.commit()
    assert client.get(f"/_probe/productos/{producto_id}").json["precio"] == 20.0
    assert outbox_rows(sqlite_app) == []
