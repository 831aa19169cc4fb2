"""Orders do not queue on statistics rows (migration 0007) and, since 0017, run no
statistics trigger at all: an inserted row is its own delta, a fold takes the rows
of ended transactions and moves the deltas into the rollups, and the figures stay
exact throughout, with 64 orders in flight at once on a real PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text

from electro_isla.estadisticas import operaciones
from electro_isla.estadisticas.models import SIN_PLEGAR
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db as _db
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import user_with_role
from tests.pedidos.test_concurrencia import BODY, run_together

PEDIDO = text(
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono, "
    "notas, created_at, updated_at) VALUES (:u, :e, 'tarjeta', 10.50, '', '', '', :t, :t) "
    "RETURNING id"
)
LINEA = text(
    "INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, "
    "precio_unitario, subtotal) VALUES (:p, :producto, 'x', 1, 10.50, 10.50)"
)


def figuras_exactas(app) -> dict:
    """The raw-row figures, after checking the rollups give exactly them."""
    with app.app_context():
        raw, found = operaciones.comparar_rollups(meses())
        _db.session.remove()
    assert found == []
    return raw


def _deltas(app) -> int:
    """What a fold would move: delta rows, and pedidos and lines no fold took yet."""
    with app.app_context():
        n = sum(_db.session.scalar(select(func.count()).select_from(t)) for t in SIN_PLEGAR)
        _db.session.remove()
        return n


def _pedidos_deltas(app) -> int:
    with app.app_context():
        n = _db.session.scalar(text("SELECT count(*) FROM estadisticas_pedidos_delta"))
        _db.session.remove()
        return n


TICKS = text(
    "SELECT i FROM (SELECT i, random() AS r FROM generate_series(1, :n) i) AS d "
    "WHERE r < 1.0 / 256 ORDER BY i"
)


def _seed_for(conn, rows: int, wanted) -> tuple[float, list[int]]:  # noqa: ANN001
    """A random() seed after which the rows among the next `rows` whose draw ticks
    (0011: a statistics row trigger folds when its draw is < 1/256) satisfy `wanted`;
    the seed and those rows (1-based). Leaves `conn` seeded with it."""
    for k in range(1, 2000):
        conn.execute(text("SELECT setseed(:s)"), {"s": k / 2000})
        ticks = list(conn.scalars(TICKS, {"n": rows}))
        if wanted(ticks):
            conn.execute(text("SELECT setseed(:s)"), {"s": k / 2000})
            return k / 2000, ticks
    raise AssertionError("no seed gives such ticks")


def seed_ticks(conn, rows: int, wanted) -> list[int]:  # noqa: ANN001
    """Seed this connection's random() so that the next `rows` draws tick as `wanted`."""
    return _seed_for(conn, rows, wanted)[1]


@contextmanager
def _no_fold_due(app) -> Iterator[None]:
    """Every connection the app checks out is seeded so that its next 64 random() draws
    do not tick: an order placed through the API then leaves its deltas unfolded."""
    with app.app_context():
        engine = _db.engine
    with engine.connect() as conn:
        seed, _ = _seed_for(conn, 64, lambda ticks: not ticks)

    def seeded(dbapi_conn, _record, _proxy) -> None:  # noqa: ANN001
        cursor = dbapi_conn.cursor()
        cursor.execute("SELECT setseed(%s)", (seed,))
        cursor.close()

    event.listen(engine, "checkout", seeded)
    try:
        yield
    finally:
        event.remove(engine, "checkout", seeded)


def _order(app, headers: dict[str, str], producto: int, cantidad: int = 1) -> None:
    """One order through the API (its triggers write the statistics)."""
    response = app.test_client().post(
        "/api/pedidos/",
        json={"items": [{"producto_id": producto, "cantidad": cantidad}], **BODY},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()


def test_an_order_waits_for_no_rollup_row_of_an_order_in_flight(app):
    """Same usuario, producto, metodo and day, the first order not yet committed:
    the second commits at once (0002 made it wait on the per-usuario and
    per-producto rows until the first one's COMMIT)."""
    app.config["TIMEZONE"] = "UTC"
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context():
        producto = ProductoFactory(stock=10).id
        engine = _db.engine
    now = datetime.now(UTC)
    first, second = engine.connect(), engine.connect()
    try:
        with first.begin():
            pid = first.execute(PEDIDO, {"u": usuario, "e": "confirmado", "t": now}).scalar_one()
            first.execute(LINEA, {"p": pid, "producto": producto})
            with second.begin():
                second.execute(text("SET LOCAL lock_timeout = '500ms'"))
                other = second.execute(
                    PEDIDO, {"u": usuario, "e": "confirmado", "t": now}
                ).scalar_one()
                second.execute(LINEA, {"p": other, "producto": producto})
    finally:
        first.close()
        second.close()
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 2
    assert raw["ventas"]["productos_mas_vendidos"][0]["cantidad_vendida"] == 2
    assert raw["usuarios"]["usuarios_recurrentes"] == 1


DELTA_TABLES = text(
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_name LIKE 'estadisticas%delta' "
    "ORDER BY table_name"
)


STATISTICS_CALLS = text(
    "SELECT funcname, calls FROM pg_stat_xact_user_functions "
    "WHERE funcname LIKE 'estadisticas%' ORDER BY funcname"
)


def test_an_order_calls_no_statistics_function_and_its_rows_are_its_deltas(app):
    """A pedido and its line (0009-0016: a row trigger each, a plpgsql call and a delta
    INSERT; issue 20's cost): no statistics function runs, no delta row is written, the
    readers see the order through the views, and the figures are exact."""
    app.config["TIMEZONE"] = "UTC"
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context():
        producto = ProductoFactory(stock=10).id
        _db.session.execute(text("SELECT estadisticas_plegar()"))
        _db.session.commit()
        tables = list(_db.session.scalars(DELTA_TABLES))
        with _db.engine.begin() as conn:
            conn.execute(text("SET LOCAL track_functions = 'pl'"))
            seed_ticks(conn, 2, lambda ticks: not ticks)  # no fold due
            pid = conn.execute(
                PEDIDO, {"u": usuario, "e": "confirmado", "t": datetime.now(UTC)}
            ).scalar_one()
            conn.execute(LINEA, {"p": pid, "producto": producto})
            called = conn.execute(STATISTICS_CALLS).all()
        written = {
            t: _db.session.execute(text(f"SELECT * FROM {t}")).all()  # noqa: S608
            for t in tables
        }
        pendientes = [
            _db.session.execute(text(f"SELECT * FROM {v.name}")).all()  # noqa: S608
            for v in SIN_PLEGAR[:2]
        ]
        _db.session.remove()
    assert called == []
    assert sum(map(len, written.values())) == 0, written
    [pedido], [linea] = pendientes
    assert pedido[1:] == ("confirmado", "tarjeta", usuario, 1, 1050)
    assert tuple(linea) == (producto, 1, 1050)
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 1


def test_the_fold_moves_the_deltas_and_no_figure(app):
    app.config["TIMEZONE"] = "America/Havana"
    buyers = [user_with_role(app, "cliente")[1] for _ in range(3)]
    with app.app_context():
        producto = ProductoFactory(stock=100).id
    with _no_fold_due(app):
        for i in range(5):
            _order(app, buyers[i % 3], producto)
    before = figuras_exactas(app)
    assert _deltas(app) > 0  # the orders' rows wait for a fold, not in the rollup rows
    folded = app.test_cli_runner().invoke(args=["estadisticas-plegar"])
    assert folded.exit_code == 0, folded.output
    assert "rows folded" in folded.output
    assert _deltas(app) == 0
    assert figuras_exactas(app) == before
    assert before["reporte"]["resumen"]["total_pedidos"] == 5
    assert before["usuarios"]["usuarios_recurrentes"] == 2


def test_sqlite_writes_the_rollups_directly(sqlite_app):
    buyer = user_with_role(sqlite_app, "cliente")[1]
    with sqlite_app.app_context():
        producto = ProductoFactory(stock=5).id
    _order(sqlite_app, buyer, producto, cantidad=2)
    assert _deltas(sqlite_app) == 0
    assert figuras_exactas(sqlite_app)["reporte"]["resumen"]["total_pedidos"] == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_sixty_four_parallel_orders_leave_the_rollups_exact(app, seed):
    """64 orders at once through the API, then 64 raw-SQL transactions at once (some
    cancelling their own order, some folding), with folds racing the writers."""
    app.config["TIMEZONE"] = "UTC"
    buyers = [user_with_role(app, "cliente") for _ in range(32)]
    with app.app_context():
        productos = [ProductoFactory(stock=10_000).id for _ in range(8)]
        engine = _db.engine

    def api_order(i: int) -> int:
        if i % 16 == 0:
            with engine.begin() as conn:
                conn.execute(text("SELECT estadisticas_plegar()"))
        response = app.test_client().post(
            "/api/pedidos/",
            json={"items": [{"producto_id": productos[i % 8], "cantidad": 1 + i % 3}], **BODY},
            headers=buyers[i % 32][1],
        )
        return response.status_code

    assert run_together(64, api_order) == Counter({201: 64})
    rnd = random.Random(seed)
    plans = [(rnd.random() < 0.25, rnd.random() < 0.15, rnd.choice(productos)) for _ in range(64)]

    def sql_order(i: int) -> int:
        cancel, fold, producto = plans[i]
        with engine.begin() as conn:
            pid = conn.execute(
                PEDIDO, {"u": buyers[i % 32][0], "e": "confirmado", "t": datetime.now(UTC)}
            ).scalar_one()
            conn.execute(LINEA, {"p": pid, "producto": producto})
            if cancel:
                conn.execute(
                    text("UPDATE pedidos SET estado = 'cancelado' WHERE id = :p"), {"p": pid}
                )
            if fold:
                conn.execute(text("SELECT estadisticas_plegar()"))
        return 1

    assert run_together(64, sql_order) == Counter({1: 64})
    raw = figuras_exactas(app)
    cancelled = sum(1 for cancel, _f, _p in plans if cancel)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 128
    # API orders start pendiente (no sale); the raw ones are confirmado sales.
    assert sum(m["count"] for m in raw["ventas"]["metodos_pago"]) == 64 - cancelled
    assert raw["usuarios"]["total_usuarios"] == 32
    assert raw["usuarios"]["usuarios_recurrentes"] == 32
    with app.app_context():
        _db.session.execute(text("SELECT estadisticas_plegar()"))
        _db.session.commit()
    assert _deltas(app) == 0
    assert figuras_exactas(app) == raw


def test_bulk_statements_upsert_directly_beside_unfolded_deltas(app):
    """In bulk mode (seed-demo's COPY, or `SET LOCAL estadisticas.masivo = 'on'`) a
    statement writes the rollups itself (no deltas to fold); without it a large
    statement writes row deltas (0009); the small writes' deltas before and after
    still add up exactly."""
    app.config["TIMEZONE"] = "Asia/Kathmandu"
    args = ["seed-demo", "--pedidos", "1500", "--usuarios", "150", "--productos", "30"]
    result = app.test_cli_runner().invoke(args=[*args, "--seed", "3"])  # one COPY: bulk
    assert result.exit_code == 0, result.output
    with app.app_context():  # the 1500 pedidos went straight into the rollups
        pedidos_deltas = _db.session.scalar(text("SELECT count(*) FROM estadisticas_pedidos_delta"))
        _db.session.remove()
    assert pedidos_deltas == 0
    buyer = user_with_role(app, "cliente")[0]
    with app.app_context():
        producto = ProductoFactory(stock=50).id
        with _db.engine.begin() as conn:  # three small orders, no fold due (draws seeded):
            seed_ticks(conn, 6, lambda ticks: not ticks)  # a fold would leave no delta
            for _ in range(3):
                pid = conn.execute(
                    PEDIDO, {"u": buyer, "e": "confirmado", "t": datetime.now(UTC)}
                ).scalar_one()
                conn.execute(LINEA, {"p": pid, "producto": producto})
        _db.session.remove()
    assert _deltas(app) > 0
    figuras_exactas(app)
    before = _pedidos_deltas(app)
    with app.app_context():
        _db.session.execute(text("SET LOCAL estadisticas.masivo = 'on'"))
        changed = _db.session.execute(
            text("UPDATE pedidos SET estado = 'cancelado' WHERE id % 3 <> 0")
        ).rowcount
        _db.session.commit()
        _db.session.remove()
    assert changed >= 1000
    assert _pedidos_deltas(app) == before  # upserted, no delta
    figuras_exactas(app)
    with app.app_context():  # the same kind of statement, not in bulk mode: row deltas
        changed = _db.session.execute(
            text("UPDATE pedidos SET estado = 'entregado' WHERE id % 3 = 1")
        ).rowcount
        _db.session.commit()
        _db.session.remove()
    assert changed >= 300
    assert _pedidos_deltas(app) > before
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 1503
    folded = app.test_cli_runner().invoke(args=["estadisticas-plegar"])
    assert folded.exit_code == 0, folded.output
    assert figuras_exactas(app) == raw


MUCHOS = text(
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono, "
    "notas, created_at, updated_at) SELECT :u, 'confirmado', 'efectivo', 1.25 * i, '', '', '', "
    ":t, :t FROM generate_series(1, :n) i"
)


def _pendientes_de_pedidos(app) -> int:
    with app.app_context():
        n = _db.session.scalar(select(func.count()).select_from(SIN_PLEGAR[0]))
        _db.session.remove()
        return n


def test_a_fold_a_transaction_runs_takes_none_of_its_own_rows(app):
    """0017: a transaction whose inserted pedido drew a tick folds at its COMMIT (a
    deferred constraint trigger). That fold takes the rows of ended transactions (here
    an earlier order) but none of its own 600, which wait for a later fold; every
    figure stays exact before and after it."""
    app.config["TIMEZONE"] = "UTC"
    usuarios = [user_with_role(app, "cliente")[0] for _ in range(2)]
    with app.app_context():
        _db.session.execute(text("SELECT estadisticas_plegar()"))
        _db.session.commit()
        _db.session.execute(PEDIDO, {"u": usuarios[0], "e": "confirmado", "t": datetime.now(UTC)})
        _db.session.commit()  # an earlier order, not taken yet
        assert (
            _db.session.execute(
                text("SELECT count(*) FROM estadisticas_pedidos_pendientes")
            ).scalar()
            == 1
        )
        seed_ticks(_db.session, 600, lambda t: t == [t[0]] if t else False)  # one tick
        _db.session.execute(MUCHOS, {"u": usuarios[0], "t": datetime.now(UTC), "n": 300})
        _db.session.execute(MUCHOS, {"u": usuarios[1], "t": datetime.now(UTC), "n": 300})
        _db.session.commit()  # the fold runs here
        _db.session.remove()
    assert _pendientes_de_pedidos(app) == 600
    raw = figuras_exactas(app)
    assert raw["reporte"]["resumen"]["total_pedidos"] == 601
    assert raw["usuarios"]["usuarios_recurrentes"] == 2
    with app.app_context():
        _db.session.execute(text("SELECT estadisticas_plegar()"))
        _db.session.commit()
        _db.session.remove()
    assert _pendientes_de_pedidos(app) == 0
    assert figuras_exactas(app) == raw


def test_an_update_of_no_counted_column_writes_no_delta(app):
    """The row triggers' WHEN: changing notas, updated_at or a line's name counts nothing."""
    app.config["TIMEZONE"] = "UTC"
    usuario, _ = user_with_role(app, "cliente")
    with app.app_context():
        producto = ProductoFactory(stock=10).id
        with _db.engine.begin() as conn:
            pid = conn.execute(
                PEDIDO, {"u": usuario, "e": "confirmado", "t": datetime.now(UTC)}
            ).scalar_one()
            conn.execute(LINEA, {"p": pid, "producto": producto})
        _db.session.execute(text("SELECT estadisticas_plegar()"))
        _db.session.commit()
        _db.session.execute(
            text("UPDATE pedidos SET notas = 'x', updated_at = now() WHERE id = :p"), {"p": pid}
        )
        _db.session.execute(
            text("UPDATE detalles_pedido SET producto_nombre = 'y' WHERE pedido_id = :p"),
            {"p": pid},
        )
        _db.session.commit()
        _db.session.remove()
    assert _deltas(app) == 0
    assert figuras_exactas(app)["reporte"]["resumen"]["total_pedidos"] == 1
