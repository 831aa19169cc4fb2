"""estadisticas-check compares every rollup row with the raw rows, not only the figures
the endpoints show: a DBA's probe drifted a producto outside the top ten and the
check passed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from electro_isla.estadisticas import filas, operaciones
from electro_isla.estadisticas import models as r
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import Pedido
from tests.estadisticas.test_estadisticas_operaciones import NOW, _shop


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_producto_drifted_outside_the_top_ten_is_found_and_rebuild_repairs_it(request, backend):
    app = request.getfixturevalue("app" if backend == "postgresql" else "sqlite_app")
    _shop(app)
    pv = r.productos_vendidos
    with app.app_context():
        assert filas.comparar() == []
        operaciones.plegar()  # every delta in its rollup row, to plant the drift there
        por_ventas = select(pv.c.producto_id, pv.c.cantidad).where(pv.c.cantidad > 0)
        vendidos = _db.session.execute(por_ventas.order_by(pv.c.cantidad.desc())).all()
        assert len(vendidos) > 11
        producto, cantidad = vendidos[-1]
        _db.session.execute(
            update(pv).where(pv.c.producto_id == producto).values(cantidad=pv.c.cantidad + 1)
        )
        _db.session.commit()
        # No figure shows that producto; only the row comparison sees it.
        _raw, found = operaciones.comparar_rollups(meses())
        assert found == [
            f"rows estadisticas_productos_vendidos[producto_id={producto}].cantidad: "
            f"{cantidad} != {cantidad + 1}"
        ]
        _db.session.rollback()
        operaciones.rebuild()
        assert filas.comparar() == []
        _db.session.remove()


def test_a_day_moved_outside_the_window_is_found_by_the_cli_which_names_the_rebuild(app):
    """A pedido older than the window moved to another old day behind a disabled
    trigger: every figure (window months, all-history totals) stays right."""
    _shop(app)
    runner = app.test_cli_runner()
    with app.app_context():
        viejo = _db.session.scalar(
            select(Pedido.id).where(Pedido.created_at < NOW - timedelta(days=420)).limit(1)
        )
        assert viejo is not None
        _db.session.remove()
        with _db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE pedidos DISABLE TRIGGER estadisticas_pedidos_upd"))
            conn.execute(
                text(
                    "UPDATE pedidos SET created_at = created_at - interval '3 days' WHERE id = :i"
                ),
                {"i": viejo},
            )
            conn.execute(text("ALTER TABLE pedidos ENABLE TRIGGER estadisticas_pedidos_upd"))

    drift = runner.invoke(args=["estadisticas-check"])
    assert drift.exit_code == 1, drift.output
    lines = drift.output.splitlines()
    moved = [line for line in lines if line.startswith("rows estadisticas_pedidos_dia[")]
    assert len(moved) == 2, lines  # the day it left and the day it reached
    assert not any(line.startswith("rollups ") for line in lines), lines
    assert "the rollups differ from the raw rows" in drift.output
    assert runner.invoke(args=["estadisticas-rebuild"]).exit_code == 0
    again = runner.invoke(args=["estadisticas-check"])
    assert again.exit_code == 0, again.output


def test_many_differing_rows_are_listed_up_to_a_bound_and_counted(sqlite_app):
    _shop(sqlite_app)
    pd = r.pedidos_dia
    with sqlite_app.app_context():
        _db.session.execute(update(pd).values(pedidos=pd.c.pedidos + 1))
        _db.session.commit()
        rows = _db.session.scalar(select(func.count()).select_from(pd))
        assert rows > filas.SHOWN
        found = [line for line in filas.comparar() if "estadisticas_pedidos_dia" in line]
        _db.session.remove()
    assert len(found) == filas.SHOWN + 1
    assert found[-1] == f"rows estadisticas_pedidos_dia: {rows - filas.SHOWN} more keys differ"
