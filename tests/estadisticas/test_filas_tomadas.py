"""Migration 0017 on a real PostgreSQL: an inserted pedido is its own delta until a fold
takes it, and a change racing a fold is counted once, whichever commits first.

The protocol (docs/issue-20-filas-como-deltas.md): an UPDATE or DELETE of another
transaction's row reads the horizon under the fold's lock taken shared until COMMIT;
a REPEATABLE READ writer reads it FOR SHARE. Each test below holds one side open
and lets the other run into it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from electro_isla.extensions import db as _db
from tests.estadisticas.test_estadisticas_sin_fila_caliente import figuras_exactas, seed_ticks
from tests.helpers import user_with_role

PEDIDO = text(
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono, "
    "notas, created_at, updated_at) VALUES (:u, 'confirmado', 'tarjeta', 12.50, '', '', '', "
    ":t, :t) RETURNING id"
)
CANCELA = text("UPDATE pedidos SET estado = 'cancelado' WHERE id = :p")
PLEGAR = text("SELECT estadisticas_plegar()")
WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type IN ('Lock', 'LWLock') AND wait_event = 'advisory' "
    "AND datname = current_database()"
)


def _pedido(app, tomado: bool) -> int:
    """A committed confirmado pedido; `tomado`: then taken by a fold."""
    app.config["TIMEZONE"] = "UTC"
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context(), _db.engine.begin() as conn:
        pid = conn.execute(PEDIDO, {"u": usuario, "t": datetime.now(UTC)}).scalar_one()
    if tomado:
        with app.app_context(), _db.engine.begin() as conn:
            conn.execute(PLEGAR)
    return pid


def _waits_then(app, other: Callable[[], None], hold: Callable[[], None]) -> bool:
    """Run `other` on a thread; once it waits on the fold's advisory lock (or after
    3 s), call `hold` (which ends what it waits for). True when it waited."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            other()
        except BaseException as exc:  # noqa: BLE001  reported to the test
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    waited = False
    with app.app_context(), _db.engine.connect() as watcher:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not done.is_set():
            if watcher.execute(WAITING).scalar():
                waited = True
                break
            time.sleep(0.02)
    hold()
    thread.join(30)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return waited


def test_an_order_is_read_as_it_is_until_a_fold_takes_it(app):
    pid = _pedido(app, tomado=False)
    with app.app_context():
        pendientes = _db.session.execute(
            text(
                "SELECT count(*) FROM pedidos WHERE alta_xact >= (SELECT xact FROM "
                "estadisticas_horizonte) AND id = :p"
            ),
            {"p": pid},
        ).scalar_one()
        _db.session.remove()
    assert pendientes == 1
    assert figuras_exactas(app)["reporte"]["resumen"]["total_pedidos"] == 1
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(PLEGAR)
        delta = conn.execute(text("SELECT count(*) FROM estadisticas_pedidos_delta")).scalar()
        rollup = conn.execute(text("SELECT sum(pedidos) FROM estadisticas_pedidos_dia")).scalar()
    assert (delta, rollup) == (0, 1)
    assert figuras_exactas(app)["reporte"]["resumen"]["total_pedidos"] == 1


def test_a_fold_waits_for_a_change_of_a_row_it_would_take(app):
    """The change first: its trigger found the row untaken (no delta) and holds the lock
    shared; a fold taking the old row now would count the old estado for good."""
    pid = _pedido(app, tomado=False)
    with app.app_context(), _db.engine.connect() as conn:
        change = conn.begin()
        conn.execute(CANCELA, {"p": pid})

        def fold() -> None:
            with app.app_context(), _db.engine.begin() as other:
                other.execute(PLEGAR)

        assert _waits_then(app, fold, change.commit)
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 1
    assert sum(m["count"] for m in raw["ventas"]["metodos_pago"]) == 0


def test_a_change_waits_for_a_fold_taking_its_row_and_then_writes_its_delta(app):
    """The fold first (it took the row as it was): the change's trigger waits for its
    COMMIT, then sees the row taken and writes −old +new."""
    pid = _pedido(app, tomado=False)
    with app.app_context(), _db.engine.connect() as conn:
        fold = conn.begin()
        conn.execute(PLEGAR)

        def change() -> None:
            with app.app_context(), _db.engine.begin() as other:
                other.execute(CANCELA, {"p": pid})

        assert _waits_then(app, change, fold.commit)
    with app.app_context(), _db.engine.connect() as conn:
        deltas = conn.execute(text("SELECT count(*) FROM estadisticas_pedidos_delta")).scalar()
    assert deltas == 2
    raw = figuras_exactas(app)
    assert sum(m["count"] for m in raw["ventas"]["metodos_pago"]) == 0


def test_a_repeatable_read_change_after_a_fold_it_did_not_see_is_a_serialization_failure(app):
    """Its snapshot predates the fold that took the row: reading that old horizon, it
    would write no delta and the fold's old row would stay counted."""
    pid = _pedido(app, tomado=False)
    with app.app_context(), _db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SELECT count(*) FROM pedidos"))  # the snapshot
            with _db.engine.begin() as other:
                other.execute(PLEGAR)  # takes the pedido, after that snapshot
            with pytest.raises(OperationalError) as refused:
                conn.execute(CANCELA, {"p": pid})
    assert refused.value.orig.sqlstate == "40001"
    raw = figuras_exactas(app)
    assert sum(m["count"] for m in raw["ventas"]["metodos_pago"]) == 1


def test_alta_xact_cannot_be_rewritten(app):
    pid = _pedido(app, tomado=True)
    refused = pytest.raises(DBAPIError, match="belongs to the statistics")
    with app.app_context(), refused, _db.engine.begin() as conn:
        conn.execute(text("UPDATE pedidos SET alta_xact = '1' WHERE id = :p"), {"p": pid})
    figuras_exactas(app)


def test_a_horizon_from_another_cluster_is_found_by_the_check_and_rebuild_repairs_it(app):
    """A logical restore into another cluster keeps the horizon, whose xids mean nothing
    there: new orders (smaller xids) would look taken and never be counted."""
    _pedido(app, tomado=True)
    runner = app.test_cli_runner()
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE estadisticas_horizonte SET xact = (pg_current_xact_id()::text::bigint "
                "+ 1000000)::text::xid8"
            )
        )
    _pedido(app, tomado=True)  # its fold only warns: the horizon is past every xid
    drift = runner.invoke(args=["estadisticas-check"])
    assert drift.exit_code == 1, drift.output
    assert "estadisticas-rebuild" in drift.output
    rebuilt = runner.invoke(args=["estadisticas-rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    _pedido(app, tomado=False)
    assert figuras_exactas(app)["reporte"]["resumen"]["total_pedidos"] == 3
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(PLEGAR)
        ahead = conn.execute(
            text("SELECT xact > pg_current_xact_id() FROM estadisticas_horizonte")
        ).scalar()
    assert ahead is False
    assert figuras_exactas(app)["reporte"]["resumen"]["total_pedidos"] == 3


# -- a reviewer's interleavings ---------------------------------------------------------

UNA_ORDEN = (
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, "
    "telefono, notas, created_at, updated_at) VALUES (:u, 'pendiente', 'efectivo', 3, '', "
    "'', '', now(), now())"
)


def _tick_next(conn) -> None:  # noqa: ANN001
    """Seed random() so that the next inserted pedido's draw ticks (1 in 256)."""
    seed_ticks(conn, 1, lambda ticks: ticks == [1])


@pytest.mark.parametrize("tomado", [False, True])
def test_an_update_beside_an_insert_that_ticks_in_one_statement_counts_once(app, tomado):
    """A WITH (UPDATE ...) INSERT: the INSERT's tick folded before the UPDATE's own row
    trigger had run, took the updated row, and the trigger then counted the change
    again (a reviewer). The fold now runs at COMMIT."""
    pid = _pedido(app, tomado=tomado)
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context(), _db.engine.begin() as conn:
        _tick_next(conn)
        conn.execute(
            text(f"WITH u AS ({CANCELA.text}) {UNA_ORDEN}"),  # noqa: S608  (constants)
            {"p": pid, "u": usuario},
        )
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 2
    assert sum(m["count"] for m in raw["ventas"]["metodos_pago"]) == 0


def test_a_bulk_repeatable_read_change_after_an_unseen_fold_is_a_serialization_failure(app):
    """Bulk mode read the horizon from the writer's snapshot, as a row trigger once did:
    a row a fold took after it looked untaken and its change was lost (a reviewer)."""
    pid = _pedido(app, tomado=False)
    with app.app_context(), _db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SELECT count(*) FROM usuarios"))  # the snapshot
            with _db.engine.begin() as other:
                other.execute(PLEGAR)
            conn.execute(text("SET LOCAL estadisticas.masivo = 'on'"))
            with pytest.raises(OperationalError) as refused:
                conn.execute(CANCELA, {"p": pid})
    assert refused.value.orig.sqlstate == "40001"
    assert sum(m["count"] for m in figuras_exactas(app)["ventas"]["metodos_pago"]) == 1


def test_a_rebuild_during_an_update_in_flight_does_not_deadlock(app):
    """The rebuild took the fold's lock, then waited for the tables; the UPDATE in
    flight then asked for that lock shared in its trigger: deadlock (a reviewer)."""
    pid = _pedido(app, tomado=True)
    slow = text(
        "UPDATE pedidos SET estado = 'cancelado' WHERE id = :p AND (SELECT true FROM pg_sleep(1.5))"
    )
    errors: list[BaseException] = []

    def update() -> None:
        try:
            with app.app_context(), _db.engine.begin() as conn:
                conn.execute(slow, {"p": pid})
        except BaseException as exc:  # noqa: BLE001  reported to the test
            errors.append(exc)

    thread = threading.Thread(target=update)
    thread.start()
    time.sleep(0.5)
    rebuilt = app.test_cli_runner().invoke(args=["estadisticas-rebuild"])
    thread.join(30)
    assert errors == []
    assert rebuilt.exit_code == 0, (rebuilt.output, rebuilt.exception)
    assert sum(m["count"] for m in figuras_exactas(app)["ventas"]["metodos_pago"]) == 0


def test_a_transaction_that_ticked_keeps_no_other_writer_waiting_before_its_commit(app):
    """A tick folded in the middle of its transaction and held the fold's lock until
    COMMIT: another transaction's UPDATE waited in its trigger, and a later UPDATE of
    the first one on that row deadlocked (a reviewer)."""
    pid = _pedido(app, tomado=True)
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context(), _db.engine.connect() as first, first.begin():
        _tick_next(first)
        first.execute(text(UNA_ORDEN), {"u": usuario})
        with _db.engine.begin() as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            second.execute(CANCELA, {"p": pid})  # waited, before
    assert sum(m["count"] for m in figuras_exactas(app)["ventas"]["metodos_pago"]) == 0


def _plan_of_the_untaken_pedidos(app) -> dict:
    with app.app_context(), _db.engine.connect() as conn:
        plan = conn.execute(
            text("EXPLAIN (FORMAT JSON) SELECT * FROM estadisticas_pedidos_pendientes")
        ).scalar()
    nodes, found = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "pedidos":
            found.append(node)
    (node,) = found
    return node


def test_the_untaken_pedidos_are_planned_from_the_horizons_value(app):
    """A subquery's horizon was a guess to the planner (a third of pedidos): at 1M
    pedidos it seq-scanned them, a MISS of ventas 4x and of reporte 5.7x 0016's
    (bench/estadisticas_ab.py). A STABLE function's value it estimates with."""
    usuario, _ = user_with_role(app, "cliente")
    muchos = text(
        "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, "
        "telefono, notas, created_at, updated_at) SELECT :u, 'entregado', 'efectivo', 1, '', "
        "'', '', now(), now() FROM generate_series(1, 6000)"
    )
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(muchos, {"u": usuario})
    with app.app_context(), _db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(PLEGAR)
        conn.execute(text("ANALYZE pedidos"))
    node = _plan_of_the_untaken_pedidos(app)
    assert node["Plan Rows"] < 100, node
    assert node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), node
