"""A statistic's figures come from one snapshot: a commit between two of its reads does
not mix (estadisticas/instantanea.py). A probe saw reporte with pedidos_pendientes from
before a confirmation and ingresos_totales after it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, text

from electro_isla.estadisticas.registro import ESTADISTICAS
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db as _db
from tests.estadisticas.test_lineas_concurrentes import PEDIDO
from tests.helpers import user_with_role

GENERATED = ("generado_en", "fecha_generacion")


def _figuras(app) -> dict:
    """reporte computed now, without the cache, timestamps left out."""
    with app.app_context():
        data = ESTADISTICAS["reporte"].fetch(meses())
        _db.session.remove()
    return {k: v for k, v in data.items() if k not in GENERATED}


def test_a_commit_between_two_reads_of_reporte_does_not_mix_its_figures(app):
    uid, _ = user_with_role(app, "cliente")
    with app.app_context(), _db.engine.begin() as conn:
        values = {"u": uid, "e": "pendiente", "t": datetime.now(UTC)}
        pedido = conn.execute(PEDIDO, values).scalar_one()
    before = _figuras(app)
    confirmed = []

    def confirm_after_the_first_read(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if confirmed or conn.info.get("probe") or "estadisticas_" not in statement:
            return  # once, after the fetch's first read of a rollup
        confirmed.append(True)
        with _db.engine.connect() as other:
            other.info["probe"] = True
            with other.begin():
                other.execute(
                    text("UPDATE pedidos SET estado = 'confirmado' WHERE id = :p"), {"p": pedido}
                )

    with app.app_context():
        event.listen(_db.engine, "after_cursor_execute", confirm_after_the_first_read)
        try:
            served = ESTADISTICAS["reporte"].valor()
        finally:
            event.remove(_db.engine, "after_cursor_execute", confirm_after_the_first_read)
        _db.session.remove()
    after = _figuras(app)
    assert confirmed
    served = {k: v for k, v in served.items() if k not in GENERATED}
    assert before != after  # the confirmation moved pendientes and ingresos
    # The old code answered neither: pedidos_pendientes before, ingresos_totales after.
    assert served == before, (served, before, after)
