"""The fold tick draws a random number instead of taking the next value of a sequence.

Under 0009 every statistics row trigger ran `nextval('estadisticas_deltas_seq')`
and folded when the value was a multiple of 256. That sequence is one page
every order's transaction locks twice: the last shared row an order wrote. Each
row trigger now folds with probability 1/256 (`random()`, which is per backend),
so the folds come as often on average and no order touches a shared counter.
The fold itself is unchanged (estadisticas_tal_vez_plegar: at most once per
transaction, never waiting for a fold already running).

The row functions are replaced in place (CREATE OR REPLACE: their triggers stay)
and the sequence, which nothing uses any more, is dropped. The downgrade puts
0009's functions and the sequence back.

Revision ID: 0011_tick_sin_secuencia
Revises: 0010_totales_por_clave
Create Date: 2026-12-05
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0011_tick_sin_secuencia"
down_revision = "0010_totales_por_clave"
branch_labels = None
depends_on = None


def _m0009():
    path = Path(__file__).with_name("0009_deltas_por_fila.py")
    spec = importlib.util.spec_from_file_location("deltas_por_fila_0009", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


m0009 = _m0009()

# One row in EVERY, on average, folds: a draw of this backend's generator.
TICK = f"""
    IF random() < 1.0 / {m0009.EVERY} THEN
        PERFORM estadisticas_tal_vez_plegar();
    END IF;"""


def _functions(tick: str) -> list[str]:
    """0009's three row functions with `tick` as their fold tick, replaced in place."""
    return [
        function_sql.replace(m0009.TICK, tick).replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
        )
        for _table, _stem, function_sql, _cols, _comment in m0009.PG_FILAS
    ]


def _comment(every: str) -> None:
    for _table, stem, _sql, _cols, comment in m0009.PG_FILAS:
        op.execute(
            f"COMMENT ON FUNCTION {stem}_fila() IS '{comment}; {every} it may fold "
            "(estadisticas_tal_vez_plegar). Not called in bulk mode (estadisticas.masivo).'"
        )


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no fold: 0002's row triggers write the rollups directly
    for sql in _functions(TICK):
        assert TICK in sql, "0009's row function no longer ends with its tick"
        op.execute(sql)
    _comment(f"for one row in {m0009.EVERY} on average (a random draw)")
    op.execute(
        "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by a statistics "
        f"row trigger for one row in {m0009.EVERY} on average: folds in READ COMMITTED "
        "unless a fold is running (never waits), at most once per transaction.'"
    )
    op.execute("DROP SEQUENCE estadisticas_deltas_seq")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE estadisticas_deltas_seq")
    for sql in _functions(m0009.TICK):
        op.execute(sql)
    _comment(f"once every {m0009.EVERY} rows")
    op.execute(
        "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by a statistics "
        f"row trigger once every {m0009.EVERY} rows: folds in READ COMMITTED unless a fold "
        "is running (never waits), at most once per transaction.'"
    )
