"""A line and its pedido written by two transactions at once (raw SQL, READ COMMITTED)
stay exact, and TRUNCATE / rebuild wait for a running fold (migration 0015).

A DBA's probe: a line inserted into a pendiente pedido while another session confirmed
it was never counted (each trigger read the other table without the other's write);
a line deleted while its pedido was cancelled was subtracted twice; TRUNCATE during
an open fold left a rollup row that no line backed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text, update

from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import ESTADOS_VENTA, Pedido
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import user_with_role

PEDIDO = text(
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono, "
    "notas, created_at, updated_at) VALUES (:u, :e, 'tarjeta', 30, 'c', '5', '', :t, :t) "
    "RETURNING id"
)
INSERTA = (
    "INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, "
    "precio_unitario, subtotal) VALUES (:p, :producto, 'x', 3, 10.00, 30.00)"
)
LINEA = text(f"{INSERTA} RETURNING id")
# What the rollup says of one producto (folded rows, and what is not folded: unfolded
# deltas and, since 0017, lines no fold took) and the raw rows.
VENDIDOS = text(
    "SELECT (SELECT coalesce(sum(cantidad), 0) FROM estadisticas_productos_vendidos "
    "        WHERE producto_id = :producto) "
    "     + (SELECT coalesce(sum(cantidad), 0) FROM estadisticas_productos_vendidos_pendientes "
    "        WHERE producto_id = :producto), "
    "     (SELECT coalesce(sum(d.cantidad), 0) FROM detalles_pedido d JOIN pedidos p "
    "        ON p.id = d.pedido_id WHERE d.producto_id = :producto AND p.estado = ANY(:venta))"
)


def _shop(app, estado: str, con_linea: bool, tomado: bool = False) -> tuple[int, int, int | None]:
    """(producto, pedido, line) committed: a pedido in `estado`, with a line or not;
    `tomado`: then folded, so their changes are deltas (0017), not rows read as they are."""
    uid, _ = user_with_role(app, "cliente")
    with app.app_context():
        producto = ProductoFactory(stock=100).id
        with _db.engine.begin() as conn:
            now = datetime.now(UTC)
            pedido = conn.execute(PEDIDO, {"u": uid, "e": estado, "t": now}).scalar_one()
            linea = (
                conn.execute(LINEA, {"p": pedido, "producto": producto}).scalar_one()
                if con_linea
                else None
            )
        if tomado:
            with _db.engine.begin() as conn:
                conn.execute(text("SELECT estadisticas_plegar()"))
    return producto, pedido, linea


def _vendidos(app, producto: int) -> tuple[int, int]:
    with app.app_context(), _db.engine.connect() as conn:
        params = {"producto": producto, "venta": list(ESTADOS_VENTA)}
        rollup, raw = conn.execute(VENDIDOS, params).one()
    return int(rollup), int(raw)


# A bulk loader's transaction (migration 0009): statement triggers instead of row ones.
MASIVO = text("SELECT set_config('estadisticas.masivo', 'on', true)")


def _first_then_second(app, first: str, params: dict, second: str, masivo: str = "") -> bool:
    """`first` in an open transaction; `second` from another thread, autocommit; then
    the first commits. True when the second waited for the first's COMMIT. `masivo`
    ("first" or "second") runs that one in bulk mode."""
    done = threading.Event()
    with app.app_context(), _db.engine.connect() as conn:
        tx = conn.begin()
        if masivo == "first":
            conn.execute(MASIVO)
        conn.execute(text(first), params)

        def other() -> None:
            with app.app_context(), _db.engine.begin() as other_conn:
                if masivo == "second":
                    other_conn.execute(MASIVO)
                other_conn.execute(text(second), params)
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        waited = not done.wait(0.5)
        tx.commit()
    thread.join(10)
    assert done.is_set()
    return waited


def _check(
    app,
    estado: str,
    con_linea: bool,
    first: str,
    second: str,
    expected: Callable[[int], int],
    masivo: str = "",
) -> None:
    """Both ways: the pedido and line taken by a fold before (their changes are deltas,
    ordered by the line trigger's FOR SHARE), and not (the readers see them as they are)."""
    for tomado in (True, False):
        producto, pedido, linea = _shop(app, estado, con_linea, tomado)
        params = {"p": pedido, "producto": producto, "l": linea}
        waited = _first_then_second(app, first, params, second, masivo)
        rollup, raw = _vendidos(app, producto)
        assert raw == expected(raw)
        assert rollup == raw, (first, second, tomado, waited, rollup, raw)


CONFIRMA = "UPDATE pedidos SET estado = 'confirmado' WHERE id = :p"
CANCELA = "UPDATE pedidos SET estado = 'cancelado' WHERE id = :p"
BORRA = "DELETE FROM detalles_pedido WHERE id = :l"


def test_a_line_inserted_while_another_session_confirms_its_pedido_is_counted(app):
    # Since 0017 a new line is no delta: a fold takes it with its pedido's estado then.
    _check(app, "pendiente", False, INSERTA, CONFIRMA, lambda raw: 3)
    _check(app, "pendiente", False, CONFIRMA, INSERTA, lambda raw: 3)


def test_a_line_deleted_while_another_session_cancels_its_pedido_leaves_once(app):
    # A taken line's delete reads its pedido FOR SHARE: the cancel waits, or it waits.
    _check(app, "confirmado", True, BORRA, CANCELA, lambda raw: 0)
    _check(app, "confirmado", True, CANCELA, BORRA, lambda raw: 0)


def test_in_bulk_mode_a_line_and_its_pedido_changed_at_once_stay_exact(app):
    """A DBA's probe: 0015 closed the race for row triggers, not for the bulk ones
    (migration 0016): a bulk-loaded line was never counted, a bulk-deleted one twice."""
    _check(app, "pendiente", False, INSERTA, CONFIRMA, lambda raw: 3, masivo="first")
    _check(app, "pendiente", False, CONFIRMA, INSERTA, lambda raw: 3, masivo="second")
    _check(app, "confirmado", True, BORRA, CANCELA, lambda raw: 0, masivo="first")
    _check(app, "confirmado", True, CANCELA, BORRA, lambda raw: 0, masivo="second")


def test_a_session_without_the_apps_schema_in_its_search_path_writes_and_is_counted(app):
    """A DBA's probe: `SET search_path = ''` (what a pg_dump restore sets) made every
    write of a source table fail in the statistics triggers (migration 0016)."""
    producto, pedido, _linea = _shop(app, "pendiente", True)
    with app.app_context(), _db.engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text("SET LOCAL search_path = ''"))
        qualified = conn.execution_options(schema_translate_map={None: schema})
        confirma = update(Pedido.__table__).where(Pedido.id == pedido).values(estado="confirmado")
        qualified.execute(confirma)
    assert _vendidos(app, producto) == (3, 3)


def _fold_held_while(app, action: Callable[[], None]) -> None:
    """A fold runs in an open transaction while `action` runs on another thread; the
    fold commits half a second later."""
    with app.app_context(), _db.engine.connect() as conn:
        tx = conn.begin()
        conn.execute(text("SELECT estadisticas_plegar()"))
        thread = threading.Thread(target=action)
        thread.start()
        time.sleep(0.5)
        tx.commit()
    thread.join(30)
    assert not thread.is_alive()


def test_truncate_during_a_fold_leaves_no_rollup_row_behind(app):
    producto, _pedido, _linea = _shop(app, "confirmado", True)

    def truncate() -> None:
        with app.app_context(), _db.engine.begin() as conn:
            conn.execute(text("TRUNCATE detalles_pedido"))

    _fold_held_while(app, truncate)
    assert _vendidos(app, producto) == (0, 0)


def test_a_rebuild_during_a_fold_leaves_no_rollup_row_behind(app):
    producto, _pedido, _linea = _shop(app, "confirmado", True)

    results = []

    def rebuild() -> None:
        results.append(app.test_cli_runner().invoke(args=["estadisticas-rebuild"]))

    _fold_held_while(app, rebuild)
    # It failed on a key the open fold had inserted (UniqueViolation), or left its row.
    assert results[0].exit_code == 0, (results[0].output, results[0].exception)
    rollup, raw = _vendidos(app, producto)
    assert rollup == raw == 3
    with app.app_context(), _db.engine.connect() as conn:
        # Each product's rollup row counted once: a fold's row surviving the rebuild's
        # DELETE would sit beside the rebuilt one.
        rows = conn.execute(
            text("SELECT count(*) FROM estadisticas_productos_vendidos WHERE producto_id = :p"),
            {"p": producto},
        ).scalar_one()
    assert rows == 1
