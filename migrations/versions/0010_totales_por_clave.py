"""All-history totals per key, so a statistics MISS does not scan every day of history.

reporte (orders per estado, total income, total usuarios), usuarios (usuarios per
rol) and ventas (sales per metodo_pago) summed every daily row of
estadisticas_pedidos_dia, _ventas_dia and _usuarios_dia: ten years of history are
ten times the rows (3,650 days x estados), and after a bulk import the bulk
upserts leave those tables' heaps many times their live size (a million-order
import left estadisticas_usuarios_dia at 577 pages for 3,768 rows), which even
VACUUM does not give back. That scan was what grew a MISS 1.5-1.7x with 10x
history.

From here on each of the three daily rollups has a totals table, one row per key
(estado, metodo_pago, rol) with the sum of its values over every day:
estadisticas_pedidos_estado, estadisticas_ventas_metodo, estadisticas_usuarios_rol.
They are kept by triggers on the daily rollups themselves, so every writer of a
rollup keeps them exact without knowing of them: on PostgreSQL the fold and the
bulk upserts (both under the fold's advisory lock, so these rows are no hot row
for orders, which only insert deltas) and `estadisticas-rebuild`; on SQLite
0002's row triggers. Readers add a total and its rollup's unfolded deltas, as they
do for the daily rows.

- PostgreSQL: statement triggers with transition tables (one per event; an
  INSERT ... ON CONFLICT DO UPDATE fires both the INSERT and the UPDATE one with
  its own rows), one grouped upsert per statement.
- SQLite: row triggers, one upsert per changed rollup row (its writers are serial).

The upgrade locks the daily rollups against the fold, creates the triggers, and
fills the totals from the rollups as they are. The downgrade drops both.

Revision ID: 0010_totales_por_clave
Revises: 0009_deltas_por_fila
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_totales_por_clave"
down_revision = "0009_deltas_por_fila"
branch_labels = None
depends_on = None

# (daily rollup, totals table, key column, value columns)
TOTALES = (
    ("estadisticas_pedidos_dia", "estadisticas_pedidos_estado", "estado", ("pedidos",)),
    (
        "estadisticas_ventas_dia",
        "estadisticas_ventas_metodo",
        "metodo_pago",
        ("pedidos", "total_centimos"),
    ),
    ("estadisticas_usuarios_dia", "estadisticas_usuarios_rol", "rol", ("usuarios",)),
)
EVENTS = ("INSERT", "UPDATE", "DELETE")


def _upsert(total: str, clave: str, valores: tuple[str, ...], source: str) -> str:
    """Add the rows of `source` (clave, valores...) into `total`, grouped per key."""
    cols = ", ".join((clave, *valores))
    sums = ", ".join(f"sum({v})" for v in valores)
    sets = ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in valores)
    return (
        f"INSERT INTO {total} AS t ({cols}) SELECT {clave}, {sums} FROM ({source}) AS s "
        f"GROUP BY {clave} ON CONFLICT ({clave}) DO UPDATE SET {sets}"
    )


def _pg_function(rollup: str, total: str, clave: str, valores: tuple[str, ...]) -> str:
    plus = ", ".join((clave, *valores))
    minus = ", ".join((clave, *(f"-{v} AS {v}" for v in valores)))
    nuevas, viejas = f"SELECT {plus} FROM nuevas", f"SELECT {minus} FROM viejas"
    return f"""
CREATE FUNCTION {total}_mantener() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_upsert(total, clave, valores, nuevas)};
    ELSIF TG_OP = 'UPDATE' THEN
        {_upsert(total, clave, valores, f"{nuevas} UNION ALL {viejas}")};
    ELSE
        {_upsert(total, clave, valores, viejas)};
    END IF;
    RETURN NULL;
END $$"""


def _pg_referencing(event: str) -> str:
    return {
        "INSERT": "REFERENCING NEW TABLE AS nuevas",
        "UPDATE": "REFERENCING OLD TABLE AS viejas NEW TABLE AS nuevas",
        "DELETE": "REFERENCING OLD TABLE AS viejas",
    }[event]


def _sqlite_upsert(total: str, clave: str, valores: tuple[str, ...], row: str, sign: str) -> str:
    cols = ", ".join((clave, *valores))
    vals = ", ".join((f"{row}.{clave}", *(f"{sign}{row}.{v}" for v in valores)))
    sets = ", ".join(f"{v} = {v} + excluded.{v}" for v in valores)
    return (
        f"INSERT INTO {total} ({cols}) VALUES ({vals}) ON CONFLICT ({clave}) DO UPDATE SET {sets};"
    )


def _sqlite_trigger(rollup: str, total: str, clave: str, valores, event: str) -> str:
    body = {
        "INSERT": [_sqlite_upsert(total, clave, valores, "NEW", "")],
        "UPDATE": [
            _sqlite_upsert(total, clave, valores, "OLD", "-"),
            _sqlite_upsert(total, clave, valores, "NEW", ""),
        ],
        "DELETE": [_sqlite_upsert(total, clave, valores, "OLD", "-")],
    }[event]
    return (
        f"CREATE TRIGGER {total}_{event.lower()} AFTER {event} ON {rollup} FOR EACH ROW BEGIN "
        + " ".join(body)
        + " END"
    )


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for rollup, total, clave, valores in TOTALES:
        op.create_table(
            total,
            sa.Column(clave, sa.String(length=20), primary_key=True),
            *(sa.Column(v, sa.BigInteger(), nullable=False) for v in valores),
        )
    if postgres:
        # The fold and bulk upserts wait; readers do not.
        rollups = ", ".join(t[0] for t in TOTALES)
        op.execute(f"LOCK TABLE {rollups} IN SHARE ROW EXCLUSIVE MODE")
    for rollup, total, clave, valores in TOTALES:
        if postgres:
            op.execute(_pg_function(rollup, total, clave, valores))
            op.execute(
                f"COMMENT ON FUNCTION {total}_mantener() IS 'Keeps {total} (Σ per "
                f"{clave} over every day) equal to the sums of {rollup}: adds each "
                "statement''s inserted and updated rows, subtracts its old and deleted ones.'"
            )
            for event in EVENTS:
                op.execute(
                    f"CREATE TRIGGER {total}_{event.lower()} AFTER {event} ON {rollup} "
                    f"{_pg_referencing(event)} FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION {total}_mantener()"
                )
                op.execute(
                    f"COMMENT ON TRIGGER {total}_{event.lower()} ON {rollup} IS 'Statement "
                    f"after {event} on {rollup}: keeps {total} (its sums per {clave} over "
                    "every day) in step, whoever writes the rollup (fold, bulk, rebuild).'"
                )
        else:
            for event in EVENTS:
                op.execute(_sqlite_trigger(rollup, total, clave, valores, event))
        cols = ", ".join((clave, *valores))
        sums = ", ".join(f"sum({v})" for v in valores)
        op.execute(
            f"INSERT INTO {total} ({cols}) SELECT {clave}, {sums} FROM {rollup} GROUP BY {clave}"
        )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for rollup, total, _clave, _valores in TOTALES:
        for event in EVENTS:
            op.execute(
                f"DROP TRIGGER IF EXISTS {total}_{event.lower()}"
                + (f" ON {rollup}" if postgres else "")
            )
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {total}_mantener()")
        op.drop_table(total)
