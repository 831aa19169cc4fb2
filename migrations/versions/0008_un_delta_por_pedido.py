"""One delta row per changed pedido group instead of three: cheaper order triggers.

Under 0007 every small statement on pedidos inserted three delta rows (one each
into estadisticas_pedidos_dia_delta, _ventas_dia_delta and _usuarios_pedidos_delta,
three aggregates over the transition table) and every statement on pedidos,
detalles_pedido or usuarios called estadisticas_tal_vez_plegar() to tick the fold
counter. On a CPU-bound server that work was what separated the orders/s with
and without the triggers.

From here on (PostgreSQL):
- estadisticas_pedidos_delta holds one row per (UTC day, estado, metodo_pago,
  usuario) a statement changed, with Σ pedidos and Σ total cents: the deltas of
  estadisticas_pedidos_dia (per dia, estado), estadisticas_ventas_dia (per dia,
  metodo_pago, rows of a sale estado only) and estadisticas_usuarios_pedidos (per
  usuario) are sums over it, which the readers and the fold take. A one-row
  INSERT writes one delta row.
- The triggers count towards a fold inline (nextval), calling
  estadisticas_tal_vez_plegar() only on the statement that is due.
- detalles_pedido and usuarios keep 0007's delta tables and bodies; the bulk path
  (a statement of >= 1000 rows upserts the rollups directly under the fold lock)
  is 0007's.

The upgrade waits for the writers in flight (a lock on the source tables), folds
every delta written so far with 0007's fold, then swaps the tables and functions,
so no committed delta is lost. The downgrade folds with this fold and puts 0007
back.

Revision ID: 0008_un_delta_por_pedido
Revises: 0007_rollups_sin_fila_caliente
Create Date: 2026-12-04
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0008_un_delta_por_pedido"
down_revision = "0007_rollups_sin_fila_caliente"
branch_labels = None
depends_on = None

# The delta table every pedidos statement writes, and the three it replaces.
PEDIDOS_DELTA = "estadisticas_pedidos_delta"
PEDIDOS_DELTA_COLUMNS = (
    ("dia", sa.Date()),
    ("estado", sa.String(length=20)),
    ("metodo_pago", sa.String(length=20)),
    ("usuario_id", sa.Integer()),
    ("pedidos", sa.BigInteger()),
    ("total_centimos", sa.BigInteger()),
)
REPLACED = (
    "estadisticas_pedidos_dia_delta",
    "estadisticas_ventas_dia_delta",
    "estadisticas_usuarios_pedidos_delta",
)


def _migration_0007():
    """Migration 0007's module: its constants, bodies and upgrade are reused."""
    path = Path(__file__).with_name("0007_rollups_sin_fila_caliente.py")
    spec = importlib.util.spec_from_file_location("rollups_sin_fila_caliente_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


m0007 = _migration_0007()
VENTA, BULK, EVERY, LOCK = m0007.VENTA, m0007.BULK, m0007.EVERY, m0007.LOCK

# -- PostgreSQL: the fold --------------------------------------------------------

PG_PLEGAR = f"""
CREATE FUNCTION estadisticas_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK});
    -- one pass over estadisticas_pedidos_delta feeds three rollups and the retention
    WITH d AS (
        DELETE FROM {PEDIDOS_DELTA}
        RETURNING dia, estado, metodo_pago, usuario_id, pedidos, total_centimos
    ),
    por_dia AS (
        INSERT INTO estadisticas_pedidos_dia AS r (dia, estado, slot, pedidos)
        SELECT dia, estado, 0, sum(pedidos) FROM d
        GROUP BY dia, estado HAVING sum(pedidos) <> 0 ORDER BY dia, estado
        ON CONFLICT (dia, estado, slot) DO UPDATE SET pedidos = r.pedidos + EXCLUDED.pedidos
    ),
    ventas AS (
        INSERT INTO estadisticas_ventas_dia AS r (dia, metodo_pago, slot, pedidos, total_centimos)
        SELECT dia, metodo_pago, 0, sum(pedidos), sum(total_centimos) FROM d
        WHERE estado IN {VENTA}
        GROUP BY dia, metodo_pago HAVING sum(pedidos) <> 0 OR sum(total_centimos) <> 0
        ORDER BY dia, metodo_pago
        ON CONFLICT (dia, metodo_pago, slot) DO UPDATE SET
            pedidos = r.pedidos + EXCLUDED.pedidos,
            total_centimos = r.total_centimos + EXCLUDED.total_centimos
    ),
    delta AS (
        SELECT usuario_id, sum(pedidos) AS d FROM d GROUP BY usuario_id HAVING sum(pedidos) <> 0
    ),
    nuevo AS (
        INSERT INTO estadisticas_usuarios_pedidos AS r (usuario_id, pedidos)
        SELECT usuario_id, d FROM delta ORDER BY usuario_id
        ON CONFLICT (usuario_id) DO UPDATE SET pedidos = r.pedidos + EXCLUDED.pedidos
        RETURNING r.usuario_id, r.pedidos
    ),
    -- the retention counters from each usuario's old/new count
    cuenta AS (
        SELECT sum((n.pedidos > 0)::int - (n.pedidos - d.d > 0)::int) AS con,
               sum((n.pedidos > 1)::int - (n.pedidos - d.d > 1)::int) AS rec
        FROM nuevo n JOIN delta d USING (usuario_id)
    )
    INSERT INTO estadisticas_retencion AS r (slot, con_pedidos, recurrentes)
    SELECT 0, con, rec FROM cuenta WHERE con <> 0 OR rec <> 0
    ON CONFLICT (slot) DO UPDATE SET
        con_pedidos = r.con_pedidos + EXCLUDED.con_pedidos,
        recurrentes = r.recurrentes + EXCLUDED.recurrentes;

    WITH d AS (
        DELETE FROM estadisticas_productos_vendidos_delta
        RETURNING producto_id, cantidad, ingresos_centimos
    )
    INSERT INTO estadisticas_productos_vendidos AS r (producto_id, cantidad, ingresos_centimos)
    SELECT producto_id, sum(cantidad), sum(ingresos_centimos) FROM d
    GROUP BY producto_id HAVING sum(cantidad) <> 0 OR sum(ingresos_centimos) <> 0
    ORDER BY producto_id
    ON CONFLICT (producto_id) DO UPDATE SET
        cantidad = r.cantidad + EXCLUDED.cantidad,
        ingresos_centimos = r.ingresos_centimos + EXCLUDED.ingresos_centimos;

    WITH d AS (DELETE FROM estadisticas_usuarios_dia_delta RETURNING dia, rol, usuarios)
    INSERT INTO estadisticas_usuarios_dia AS r (dia, rol, slot, usuarios)
    SELECT dia, rol, 0, sum(usuarios) FROM d
    GROUP BY dia, rol HAVING sum(usuarios) <> 0 ORDER BY dia, rol
    ON CONFLICT (dia, rol, slot) DO UPDATE SET usuarios = r.usuarios + EXCLUDED.usuarios;
END;
$$"""

# The triggers tick the counter themselves and call this only when a fold is due.
PG_TAL_VEZ = f"""
CREATE FUNCTION estadisticas_tal_vez_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Only in READ COMMITTED: a REPEATABLE READ writer's older snapshot could try to
    -- delete deltas another fold already moved (a serialization failure for its order).
    IF current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock({LOCK}) THEN
        PERFORM estadisticas_plegar();
    END IF;
END;
$$"""

# -- PostgreSQL: the triggers ----------------------------------------------------

# Written against a CTE `cambio` of (row columns..., signo) as in 0002 and 0007. A
# group whose pedidos and cents both net to 0 changes no rollup (all three are sums
# over coarser keys), so it writes nothing.
PG_PEDIDOS_BODY = f"""
    -- pedidos and cents per UTC day, estado, metodo_pago and usuario
    WITH cambio AS ({{cambio}})
    INSERT INTO {PEDIDOS_DELTA} (dia, estado, metodo_pago, usuario_id, pedidos, total_centimos)
    SELECT (created_at AT TIME ZONE 'UTC')::date, estado, metodo_pago, usuario_id, sum(signo),
           sum(signo * (total * 100)::bigint)
    FROM cambio GROUP BY 1, 2, 3, 4
    HAVING sum(signo) <> 0 OR sum(signo * (total * 100)::bigint) <> 0;
"""

# (source table, function name stem, columns, body, extra body for UPDATE only, what)
PG_TRIGGERS = (
    (
        "pedidos",
        "estadisticas_pedidos",
        m0007.PG_PEDIDOS_COLS,
        PG_PEDIDOS_BODY,
        m0007.PG_PEDIDOS_LINES,
        f"Inserts the {PEDIDOS_DELTA} rows of the changed pedidos (the deltas of "
        "estadisticas_pedidos_dia, estadisticas_ventas_dia and estadisticas_usuarios_pedidos) "
        "and, on UPDATE, the estadisticas_productos_vendidos deltas of lines entering or "
        "leaving a sale",
    ),
    *(t for t in m0007.PG_TRIGGERS if t[0] != "pedidos"),
)


def _create_triggers() -> None:
    """0007's statement triggers, with this migration's bodies and an inline fold tick."""
    old = m0007._rollups_0002()
    directo = {stem: (body, update_only) for _t, stem, _c, body, update_only, _m in old.PG_TRIGGERS}
    for table, stem, cols, body, update_only, comment in PG_TRIGGERS:
        for op_name, suffix in m0007.OPS.items():
            changed = "nuevos" if op_name != "DELETE" else "viejos"
            source = m0007._pg_source(op_name, cols)
            deltas = body + (update_only if op_name == "UPDATE" else "")
            bulk = directo[stem][0] + (directo[stem][1] if op_name == "UPDATE" else "")
            bulk = bulk.replace(old.PG_SLOT, "0::smallint")
            function = f"{stem}_{suffix}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\nIF (SELECT count(*) FROM {changed}) >= {BULK} THEN\n"
                f"PERFORM pg_advisory_xact_lock({LOCK});\n{bulk.replace('{cambio}', source)}\n"
                f"ELSE\n{deltas.replace('{cambio}', source)}\n"
                f"IF nextval('estadisticas_deltas_seq') % {EVERY} = 0 THEN\n"
                "PERFORM estadisticas_tal_vez_plegar();\nEND IF;\nEND IF;\n"
                "RETURN NULL;\nEND;\n$$"
            )
            op.execute(
                f"COMMENT ON FUNCTION {function}() IS '{comment} (after {op_name}); "
                f"folds once every {EVERY} statements (estadisticas_tal_vez_plegar). A "
                f"statement of >= {BULK} rows upserts the rollups directly instead, holding "
                "the fold lock.'"
            )
            op.execute(
                f"CREATE TRIGGER {function} AFTER {op_name} ON {table} "
                f"{m0007._pg_referencing(op_name)} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def _truncate_pedidos(deltas: tuple[str, ...]) -> None:
    """TRUNCATE pedidos empties its rollups and `deltas` (0002's trigger calls this)."""
    emptied = (*m0007.TRUNCATED[0][1], *deltas, "estadisticas_productos_vendidos_delta")
    deletes = "\n".join(f"DELETE FROM {t};" for t in emptied)
    op.execute(
        "CREATE OR REPLACE FUNCTION estadisticas_pedidos_truncate() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$\nBEGIN\n{deletes}\nRETURN NULL;\nEND;\n$$"
    )
    op.execute(
        "COMMENT ON FUNCTION estadisticas_pedidos_truncate() IS "
        f"'Empties {', '.join(emptied)} when pedidos is truncated.'"
    )


def _drop_functions() -> None:
    m0007._drop_row_triggers()
    op.execute("DROP FUNCTION estadisticas_tal_vez_plegar()")
    op.execute("DROP FUNCTION estadisticas_plegar()")


def _create_pedidos_delta(postgres: bool) -> None:
    op.create_table(
        PEDIDOS_DELTA, *(sa.Column(c, t, nullable=False) for c, t in PEDIDOS_DELTA_COLUMNS)
    )
    if postgres:
        storage = ", ".join(f"{k} = {v}" for k, v in m0007.DELTA_STORAGE.items())
        op.execute(f"ALTER TABLE {PEDIDOS_DELTA} SET ({storage})")


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Writers in flight commit their deltas first; new ones wait for the swap.
        op.execute("LOCK TABLE pedidos, detalles_pedido, usuarios IN SHARE ROW EXCLUSIVE MODE")
        op.execute("SELECT estadisticas_plegar()")  # 0007's: every delta so far
        _drop_functions()
    _create_pedidos_delta(postgres)
    for name in REPLACED:
        op.drop_table(name)
    if postgres:
        op.execute(PG_PLEGAR)
        op.execute(
            "COMMENT ON FUNCTION estadisticas_plegar() IS 'Moves the committed rows of "
            f"{PEDIDOS_DELTA}, estadisticas_productos_vendidos_delta and "
            "estadisticas_usuarios_dia_delta into their rollups (slot 0) and keeps "
            "estadisticas_retencion; one fold at a time (advisory lock).'"
        )
        op.execute(PG_TAL_VEZ)
        op.execute(
            "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by a statistics "
            f"trigger once every {EVERY} statements: folds in READ COMMITTED, unless a fold "
            "is running (never waits).'"
        )
        _create_triggers()
        _truncate_pedidos((PEDIDOS_DELTA,))


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("LOCK TABLE pedidos, detalles_pedido, usuarios IN SHARE ROW EXCLUSIVE MODE")
        op.execute("SELECT estadisticas_plegar()")  # this migration's: every delta so far
        _drop_functions()
        op.execute("DROP SEQUENCE estadisticas_deltas_seq")  # 0007's upgrade creates it
    for name in REPLACED:
        columns = m0007.DELTAS[name]
        op.create_table(name, *(sa.Column(c, t, nullable=False) for c, t in columns))
        if postgres:
            storage = ", ".join(f"{k} = {v}" for k, v in m0007.DELTA_STORAGE.items())
            op.execute(f"ALTER TABLE {name} SET ({storage})")
    op.drop_table(PEDIDOS_DELTA)
    if postgres:
        m0007._pg_upgrade()  # 0007's fold, triggers and TRUNCATE functions
