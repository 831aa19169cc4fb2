"""Row triggers write the statistics deltas: an order costs two plain INSERTs.

Under 0007 and 0008 every statement on pedidos, detalles_pedido or usuarios ran a
statement trigger with transition tables: PostgreSQL copied the changed rows into
a tuplestore, and the trigger counted them (`SELECT count(*)`), grouped them in a
CTE and inserted the sums. For the statements an order makes (one pedido, a few
lines, one row each) that per-statement machinery was most of what the triggers
cost a CPU-bound server.

From here on (PostgreSQL):
- AFTER ... FOR EACH ROW triggers insert the deltas straight from OLD and NEW,
  the same delta rows 0008 wrote (estadisticas_pedidos_delta, _productos_vendidos_
  delta, _usuarios_dia_delta), with plans plpgsql keeps. An UPDATE that changes
  no counted column (the trigger's WHEN) costs nothing.
- A bulk loader sets `SET LOCAL estadisticas.masivo = 'on'` (seed-demo does): the
  row triggers then skip (their WHEN), and statement triggers with transition
  tables, enabled by the same setting, upsert the rollups directly under the fold
  lock (0008's bulk path), so a million-row COPY costs a few GROUP BYs, not a
  million trigger calls. The two WHENs are complementary, so every row is counted
  once whatever the setting; set it before the statement, not inside it. A large
  statement without the setting goes through the row triggers: exact, slower.
- Each row trigger ticks the fold counter (nextval) and calls
  estadisticas_tal_vez_plegar() once every 256 rows, which now folds at most once
  per transaction: a fold rescans the deltas its own transaction deleted (dead
  rows only vacuum can remove after COMMIT), so a long transaction writing many
  rows must not fold again and again.
- The fold (estadisticas_plegar) and the delta tables are 0008's.

The upgrade waits for the writers in flight, folds every delta so far, then swaps
the triggers. The downgrade does the same and puts 0008's triggers back.

Revision ID: 0009_deltas_por_fila
Revises: 0008_un_delta_por_pedido
Create Date: 2026-12-05
"""

import importlib.util
from collections.abc import Callable
from pathlib import Path

from alembic import op

revision = "0009_deltas_por_fila"
down_revision = "0008_un_delta_por_pedido"
branch_labels = None
depends_on = None


def _migration(name: str, module: str):
    """An earlier migration's module: its constants, bodies and functions are reused."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


m0008 = _migration("0008_un_delta_por_pedido", "un_delta_por_pedido_0008")
m0007 = m0008.m0007
VENTA, EVERY, LOCK = m0008.VENTA, m0008.EVERY, m0008.LOCK

# The transaction-local setting of bulk loaders, and the WHENs it switches.
MASIVO = "current_setting('estadisticas.masivo', true)"
EN_FILAS = f"{MASIVO} IS DISTINCT FROM 'on'"
EN_BLOQUE = f"{MASIVO} = 'on'"
# Set (transaction-local) by the first fold a writer's tick runs.
PLEGADO = "estadisticas.plegado"

# -- PostgreSQL: one fold per transaction -----------------------------------------

PG_TAL_VEZ = f"""
CREATE OR REPLACE FUNCTION estadisticas_tal_vez_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Only in READ COMMITTED: a REPEATABLE READ writer's older snapshot could try to
    -- delete deltas another fold already moved (a serialization failure for its order).
    IF current_setting('{PLEGADO}', true) IS DISTINCT FROM 'on'
       AND current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock({LOCK}) THEN
        PERFORM set_config('{PLEGADO}', 'on', true);
        PERFORM estadisticas_plegar();
    END IF;
END;
$$"""

# -- PostgreSQL: the row triggers --------------------------------------------------

# Once every EVERY rows the writer folds (if no fold is running, once per transaction).
TICK = f"""
    IF nextval('estadisticas_deltas_seq') % {EVERY} = 0 THEN
        PERFORM estadisticas_tal_vez_plegar();
    END IF;"""


def _pedido(r: str, s: str) -> str:
    """The estadisticas_pedidos_delta row adding (s = 1) or removing (s = -1) pedido `r`."""
    return f"""
        INSERT INTO {m0008.PEDIDOS_DELTA}
            (dia, estado, metodo_pago, usuario_id, pedidos, total_centimos)
        VALUES (({r}.created_at AT TIME ZONE 'UTC')::date, {r}.estado, {r}.metodo_pago,
                {r}.usuario_id, {s}, {s} * ({r}.total * 100)::bigint);"""


def _lineas(pedido: str, s: str) -> str:
    """Add (s = 1) or remove (s = -1) every line of pedido id `pedido` from productos."""
    return f"""
            INSERT INTO estadisticas_productos_vendidos_delta
                (producto_id, cantidad, ingresos_centimos)
            SELECT producto_id, {s} * cantidad, {s} * (subtotal * 100)::bigint
            FROM detalles_pedido WHERE pedido_id = {pedido};"""


def _row_function(name: str, delta: Callable[[str, str], str], update: str = "") -> str:
    """A row trigger's function: the old row's delta out, the new row's in, then
    `update` (on UPDATE only) and the fold tick."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN  -- the old row leaves the sums
        {delta("OLD", "-1")}
    END IF;
    IF TG_OP <> 'DELETE' THEN  -- the new row enters them
        {delta("NEW", "1")}
    END IF;{update}
    {TICK}
    RETURN NULL;
END;
$$"""


PG_PEDIDOS_FILA = _row_function(
    "estadisticas_pedidos_fila",
    _pedido,
    update=f"""
    -- Only an UPDATE moves existing lines in or out of a sale: a new pedido has no
    -- lines yet (the foreign key), a deleted one lost them before (0002's BEFORE
    -- DELETE trigger). The lines are read as the statement left them.
    IF TG_OP = 'UPDATE' THEN
        IF OLD.estado IN {VENTA} AND NOT (NEW.id = OLD.id AND NEW.estado IN {VENTA}) THEN
            {_lineas("OLD.id", "-1")}
        END IF;
        IF NEW.estado IN {VENTA} AND NOT (NEW.id = OLD.id AND OLD.estado IN {VENTA}) THEN
            {_lineas("NEW.id", "1")}
        END IF;
    END IF;""",
)


def _linea(r: str, s: str) -> str:
    """The productos delta of line `r` (s = 1 adds, -1 removes) when its pedido is a sale."""
    return f"""
        INSERT INTO estadisticas_productos_vendidos_delta
            (producto_id, cantidad, ingresos_centimos)
        SELECT {r}.producto_id, {s} * {r}.cantidad, {s} * ({r}.subtotal * 100)::bigint
        FROM pedidos p WHERE p.id = {r}.pedido_id AND p.estado IN {VENTA};"""


PG_DETALLES_FILA = _row_function("estadisticas_detalles_fila", _linea)


def _usuario(r: str, s: str) -> str:
    return f"""
        INSERT INTO estadisticas_usuarios_dia_delta (dia, rol, usuarios)
        VALUES (({r}.date_joined AT TIME ZONE 'UTC')::date, {r}.rol, {s});"""


PG_USUARIOS_FILA = _row_function("estadisticas_usuarios_fila", _usuario)

# (table, function name stem, row function, columns an UPDATE must change to count, what)
PG_FILAS = (
    (
        "pedidos",
        "estadisticas_pedidos",
        PG_PEDIDOS_FILA,
        m0007.PG_PEDIDOS_COLS,
        f"Inserts the {m0008.PEDIDOS_DELTA} rows of a changed pedido (the deltas of "
        "estadisticas_pedidos_dia, estadisticas_ventas_dia and estadisticas_usuarios_pedidos) "
        "and, when an UPDATE moves it in or out of a sale, the estadisticas_productos_vendidos "
        "deltas of its lines",
    ),
    (
        "detalles_pedido",
        "estadisticas_detalles",
        PG_DETALLES_FILA,
        m0007.PG_DETALLES_COLS,
        "Inserts the estadisticas_productos_vendidos deltas of a changed line of a sale",
    ),
    (
        "usuarios",
        "estadisticas_usuarios",
        PG_USUARIOS_FILA,
        m0007.PG_USUARIOS_COLS,
        "Inserts the estadisticas_usuarios_dia deltas of a changed usuario",
    ),
)


def _when(op_name: str, cols: str) -> str:
    """The row triggers' WHEN: not in bulk mode, and for UPDATE a counted column changed."""
    if op_name != "UPDATE":
        return EN_FILAS
    old = ", ".join(f"OLD.{c.strip()}" for c in cols.split(","))
    new = ", ".join(f"NEW.{c.strip()}" for c in cols.split(","))
    return f"{EN_FILAS} AND ({old}) IS DISTINCT FROM ({new})"


def _create_row_triggers() -> None:
    for table, stem, function_sql, cols, comment in PG_FILAS:
        function = f"{stem}_fila"
        op.execute(function_sql)
        op.execute(
            f"COMMENT ON FUNCTION {function}() IS '{comment}; once every {EVERY} rows it may "
            "fold (estadisticas_tal_vez_plegar). Not called in bulk mode (estadisticas.masivo).'"
        )
        for op_name, suffix in m0007.OPS.items():
            op.execute(
                f"CREATE TRIGGER {stem}_{suffix} AFTER {op_name} ON {table} FOR EACH ROW "
                f"WHEN ({_when(op_name, cols)}) EXECUTE FUNCTION {function}()"
            )
            op.execute(
                f"COMMENT ON TRIGGER {stem}_{suffix} ON {table} IS 'Statistics deltas of each "
                f"row after {op_name} ({function}), unless in bulk mode (estadisticas.masivo)"
                + (" or no counted column changed" if op_name == "UPDATE" else "")
                + ".'"
            )


def _create_bulk_triggers() -> None:
    """0002's statement bodies into slot 0, under the fold lock, in bulk mode only."""
    old = m0007._rollups_0002()
    for table, stem, cols, body, update_only, comment in old.PG_TRIGGERS:
        for op_name, suffix in m0007.OPS.items():
            sql = body + (update_only if op_name == "UPDATE" else "")
            sql = sql.replace(old.PG_SLOT, "0::smallint").replace(
                "{cambio}", m0007._pg_source(op_name, cols)
            )
            function = f"{stem}_masivo_{suffix}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\nPERFORM pg_advisory_xact_lock({LOCK});\n{sql}\n"
                "RETURN NULL;\nEND;\n$$"
            )
            op.execute(
                f"COMMENT ON FUNCTION {function}() IS '{comment} (after {op_name}), upserting "
                "the rollups directly under the fold lock: bulk mode only "
                "(SET LOCAL estadisticas.masivo = on), when the row triggers skip.'"
            )
            op.execute(
                f"CREATE TRIGGER {function} AFTER {op_name} ON {table} "
                f"{m0007._pg_referencing(op_name)} FOR EACH STATEMENT "
                f"WHEN ({EN_BLOQUE}) EXECUTE FUNCTION {function}()"
            )
            op.execute(
                f"COMMENT ON TRIGGER {function} ON {table} IS 'Bulk mode only "
                f"(estadisticas.masivo): upserts the statistics rollups for the statement''s "
                f"rows after {op_name} ({function}).'"
            )


def _drop_triggers() -> None:
    for table, stem, *_ in PG_FILAS:
        for suffix in m0007.OPS.values():
            op.execute(f"DROP TRIGGER IF EXISTS {stem}_{suffix} ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {stem}_masivo_{suffix} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {stem}_masivo_{suffix}()")
        op.execute(f"DROP FUNCTION IF EXISTS {stem}_fila()")


def _fold_everything() -> None:
    """Writers in flight commit their deltas first; new ones wait for the swap."""
    op.execute("LOCK TABLE pedidos, detalles_pedido, usuarios IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT estadisticas_plegar()")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps 0002's row triggers writing the rollups directly
    _fold_everything()
    m0007._drop_row_triggers()  # 0008's statement triggers and their functions
    op.execute(PG_TAL_VEZ)
    op.execute(
        "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by a statistics "
        f"row trigger once every {EVERY} rows: folds in READ COMMITTED unless a fold is "
        "running (never waits), at most once per transaction.'"
    )
    _create_row_triggers()
    _create_bulk_triggers()


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    _fold_everything()
    _drop_triggers()
    op.execute(m0008.PG_TAL_VEZ.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(
        "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by a statistics "
        f"trigger once every {EVERY} statements: folds in READ COMMITTED, unless a fold "
        "is running (never waits).'"
    )
    m0008._create_triggers()
