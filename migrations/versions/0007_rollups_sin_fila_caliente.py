"""Statistics rollups without a hot row: per-statement deltas, folded in later.

Under 0002 every order's transaction upserted the same rollup rows (today's
estadisticas_pedidos_dia / _ventas_dia row, the retention row, each producto's
row) and held their row locks until COMMIT, so concurrent orders queued on them
(the 16 pid slots still collided at 64 clients; productos and usuarios were not
slotted at all).

From here on, on PostgreSQL, the triggers only INSERT (never UPDATE) into five
delta tables, one per keyed rollup (`<rollup>_delta`, no key, no index): an
insert takes no row lock another writer can wait on. Readers add the unfolded
deltas to the rollup rows (electro_isla/estadisticas/rollups.py), so every figure
stays exact at every commit. `estadisticas_plegar()` ("fold") moves the committed
deltas into the rollups (slot 0) and keeps the retention counters; one fold at a
time (an advisory lock). A writer folds in its own transaction once every 256
statements, and only if no fold is running (pg_try_advisory_xact_lock), so no
order ever waits for another. A statement changing ≥ 1000 rows (COPY, imports,
bulk UPDATEs) takes the fold lock (waiting for a running fold) and upserts the
rollups directly with 0002's statements (slot 0): deleting that many deltas
again and again inside one long transaction would leave dead rows each later
fold re-reads. The rollup rows are written by folds and bulk statements alone.

SQLite serialises writers: its row triggers (0002) keep writing the rollups
directly; the delta tables exist there but stay empty.

The upgrade collapses the old pid slots into slot 0. Downgrade folds every delta
and restores 0002's triggers.

Revision ID: 0007_rollups_sin_fila_caliente
Revises: 0004_cache_pending
Create Date: 2026-12-04
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0007_rollups_sin_fila_caliente"
down_revision = "0006_refresh_families"
branch_labels = None
depends_on = None

VENTA = "('confirmado', 'en_preparacion', 'en_camino', 'entregado')"
# A statement changing at least this many rows folds at once (bulk writes, imports).
BULK = 1000
# Otherwise one statement in EVERY folds (if no fold is running): a fold scans
# the delta tables, dead rows included until (auto)vacuum, so not too often.
EVERY = 256
# Advisory lock key of the fold: hashtext('estadisticas_plegar').
LOCK = "hashtext('estadisticas_plegar')"

# Delta table per keyed rollup: (column, type), all NOT NULL, no key, no index.
DELTAS = {
    "estadisticas_pedidos_dia_delta": (
        ("dia", sa.Date()),
        ("estado", sa.String(length=20)),
        ("pedidos", sa.BigInteger()),
    ),
    "estadisticas_ventas_dia_delta": (
        ("dia", sa.Date()),
        ("metodo_pago", sa.String(length=20)),
        ("pedidos", sa.BigInteger()),
        ("total_centimos", sa.BigInteger()),
    ),
    "estadisticas_productos_vendidos_delta": (
        ("producto_id", sa.Integer()),
        ("cantidad", sa.BigInteger()),
        ("ingresos_centimos", sa.BigInteger()),
    ),
    "estadisticas_usuarios_pedidos_delta": (
        ("usuario_id", sa.Integer()),
        ("pedidos", sa.BigInteger()),
    ),
    "estadisticas_usuarios_dia_delta": (
        ("dia", sa.Date()),
        ("rol", sa.String(length=20)),
        ("usuarios", sa.BigInteger()),
    ),
}

# -- PostgreSQL: the fold --------------------------------------------------------

PG_PLEGAR = f"""
CREATE FUNCTION estadisticas_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK});
    WITH d AS (DELETE FROM estadisticas_pedidos_dia_delta RETURNING dia, estado, pedidos)
    INSERT INTO estadisticas_pedidos_dia AS r (dia, estado, slot, pedidos)
    SELECT dia, estado, 0, sum(pedidos) FROM d
    GROUP BY dia, estado HAVING sum(pedidos) <> 0 ORDER BY dia, estado
    ON CONFLICT (dia, estado, slot) DO UPDATE SET pedidos = r.pedidos + EXCLUDED.pedidos;

    WITH d AS (
        DELETE FROM estadisticas_ventas_dia_delta
        RETURNING dia, metodo_pago, pedidos, total_centimos
    )
    INSERT INTO estadisticas_ventas_dia AS r (dia, metodo_pago, slot, pedidos, total_centimos)
    SELECT dia, metodo_pago, 0, sum(pedidos), sum(total_centimos) FROM d
    GROUP BY dia, metodo_pago HAVING sum(pedidos) <> 0 OR sum(total_centimos) <> 0
    ORDER BY dia, metodo_pago
    ON CONFLICT (dia, metodo_pago, slot) DO UPDATE SET
        pedidos = r.pedidos + EXCLUDED.pedidos,
        total_centimos = r.total_centimos + EXCLUDED.total_centimos;

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

    -- pedidos per usuario, and the retention counters from each usuario's old/new count
    WITH d AS (DELETE FROM estadisticas_usuarios_pedidos_delta RETURNING usuario_id, pedidos),
    delta AS (
        SELECT usuario_id, sum(pedidos) AS d FROM d GROUP BY usuario_id HAVING sum(pedidos) <> 0
    ),
    nuevo AS (
        INSERT INTO estadisticas_usuarios_pedidos AS r (usuario_id, pedidos)
        SELECT usuario_id, d FROM delta ORDER BY usuario_id
        ON CONFLICT (usuario_id) DO UPDATE SET pedidos = r.pedidos + EXCLUDED.pedidos
        RETURNING r.usuario_id, r.pedidos
    ),
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
END;
$$"""

PG_TAL_VEZ = f"""
CREATE FUNCTION estadisticas_tal_vez_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Only in READ COMMITTED: a REPEATABLE READ writer's older snapshot could try to
    -- delete deltas another fold already moved (a serialization failure for its order).
    IF nextval('estadisticas_deltas_seq') % {EVERY} = 0
       AND current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock({LOCK}) THEN
        PERFORM estadisticas_plegar();
    END IF;
END;
$$"""

# -- PostgreSQL: the triggers ----------------------------------------------------

# Each body is written against a CTE `cambio` of (row columns..., signo), as in
# 0002: +1 for the new rows, -1 for the old ones. Data-modifying CTEs run once
# whether read or not; every statement here is a plain INSERT.

PG_PEDIDOS_COLS = "id, usuario_id, estado, metodo_pago, total, created_at"

PG_PEDIDOS_BODY = f"""
    WITH cambio AS ({{cambio}}),
    -- pedidos per UTC day and estado
    por_dia AS (
        INSERT INTO estadisticas_pedidos_dia_delta (dia, estado, pedidos)
        SELECT (created_at AT TIME ZONE 'UTC')::date, estado, sum(signo)
        FROM cambio GROUP BY 1, 2 HAVING sum(signo) <> 0
    ),
    -- sales per UTC day and metodo_pago: count and cents
    ventas AS (
        INSERT INTO estadisticas_ventas_dia_delta (dia, metodo_pago, pedidos, total_centimos)
        SELECT (created_at AT TIME ZONE 'UTC')::date, metodo_pago, sum(signo),
               sum(signo * (total * 100)::bigint)
        FROM cambio WHERE estado IN {VENTA} GROUP BY 1, 2
        HAVING sum(signo) <> 0 OR sum(signo * (total * 100)::bigint) <> 0
    )
    -- pedidos per usuario (the fold derives the retention counters)
    INSERT INTO estadisticas_usuarios_pedidos_delta (usuario_id, pedidos)
    SELECT usuario_id, sum(signo) FROM cambio GROUP BY usuario_id HAVING sum(signo) <> 0;
"""

# Only an UPDATE can change whether existing lines belong to a sale (see 0002).
PG_PEDIDOS_LINES = f"""
    -- lines of pedidos that entered (+) or left (-) a sale state
    WITH cambio AS ({{cambio}}),
    venta AS (
        SELECT id, sum(signo) AS s FROM cambio WHERE estado IN {VENTA}
        GROUP BY id HAVING sum(signo) <> 0
    )
    INSERT INTO estadisticas_productos_vendidos_delta (producto_id, cantidad, ingresos_centimos)
    SELECT d.producto_id, sum(v.s * d.cantidad), sum(v.s * (d.subtotal * 100)::bigint)
    FROM venta v JOIN detalles_pedido d ON d.pedido_id = v.id
    GROUP BY d.producto_id;
"""

PG_DETALLES_COLS = "pedido_id, producto_id, cantidad, subtotal"

PG_DETALLES_BODY = f"""
    -- sale lines per producto: units and cents
    WITH cambio AS ({{cambio}})
    INSERT INTO estadisticas_productos_vendidos_delta (producto_id, cantidad, ingresos_centimos)
    SELECT c.producto_id, sum(c.signo * c.cantidad), sum(c.signo * (c.subtotal * 100)::bigint)
    FROM cambio c
    -- one index lookup per changed line (see 0002)
    WHERE (SELECT p.estado FROM pedidos p WHERE p.id = c.pedido_id) IN {VENTA}
    GROUP BY c.producto_id
    HAVING sum(c.signo * c.cantidad) <> 0 OR sum(c.signo * (c.subtotal * 100)::bigint) <> 0;
"""

PG_USUARIOS_COLS = "rol, date_joined"

PG_USUARIOS_BODY = """
    -- usuarios per UTC day of date_joined and rol
    WITH cambio AS ({cambio})
    INSERT INTO estadisticas_usuarios_dia_delta (dia, rol, usuarios)
    SELECT (date_joined AT TIME ZONE 'UTC')::date, rol, sum(signo)
    FROM cambio GROUP BY 1, 2 HAVING sum(signo) <> 0;
"""

# (source table, function name stem, columns, body, extra body for UPDATE only, what)
PG_TRIGGERS = (
    (
        "pedidos",
        "estadisticas_pedidos",
        PG_PEDIDOS_COLS,
        PG_PEDIDOS_BODY,
        PG_PEDIDOS_LINES,
        "Inserts the deltas of estadisticas_pedidos_dia, estadisticas_ventas_dia, "
        "estadisticas_usuarios_pedidos (and, on UPDATE, estadisticas_productos_vendidos) "
        "for the changed pedidos",
    ),
    (
        "detalles_pedido",
        "estadisticas_detalles",
        PG_DETALLES_COLS,
        PG_DETALLES_BODY,
        "",
        "Inserts the estadisticas_productos_vendidos deltas of the changed lines of sales",
    ),
    (
        "usuarios",
        "estadisticas_usuarios",
        PG_USUARIOS_COLS,
        PG_USUARIOS_BODY,
        "",
        "Inserts the estadisticas_usuarios_dia deltas of the changed usuarios",
    ),
)

OPS = {"INSERT": "ins", "UPDATE": "upd", "DELETE": "del"}

# Rollups (and now deltas) built from each table, emptied when it is truncated.
TRUNCATED = (
    (
        "pedidos",
        (
            "estadisticas_pedidos_dia",
            "estadisticas_ventas_dia",
            "estadisticas_usuarios_pedidos",
            "estadisticas_retencion",
            "estadisticas_productos_vendidos",
        ),
    ),
    ("detalles_pedido", ("estadisticas_productos_vendidos",)),
    ("usuarios", ("estadisticas_usuarios_dia",)),
)


def _pg_source(op_name: str, cols: str) -> str:
    new = f"SELECT {cols}, 1 AS signo FROM nuevos"
    old = f"SELECT {cols}, -1 AS signo FROM viejos"
    return {"INSERT": new, "DELETE": old, "UPDATE": f"{new} UNION ALL {old}"}[op_name]


def _pg_referencing(op_name: str) -> str:
    return {
        "INSERT": "REFERENCING NEW TABLE AS nuevos",
        "DELETE": "REFERENCING OLD TABLE AS viejos",
        "UPDATE": "REFERENCING OLD TABLE AS viejos NEW TABLE AS nuevos",
    }[op_name]


def _drop_row_triggers() -> None:
    for table, stem, *_ in PG_TRIGGERS:
        for suffix in OPS.values():
            op.execute(f"DROP TRIGGER IF EXISTS {stem}_{suffix} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {stem}_{suffix}()")


def _truncate_functions(with_deltas: bool) -> None:
    """(Re)define what TRUNCATE of each source table empties (its triggers are 0002's)."""
    for table, targets in TRUNCATED:
        emptied = list(targets)
        if with_deltas:
            emptied += [f"{t}_delta" for t in targets if f"{t}_delta" in DELTAS]
        deletes = "\n".join(f"DELETE FROM {t};" for t in emptied)
        function = f"estadisticas_{table}_truncate"
        op.execute(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{deletes}\nRETURN NULL;\nEND;\n$$"
        )
        op.execute(
            f"COMMENT ON FUNCTION {function}() IS 'Empties {', '.join(emptied)} "
            f"when {table} is truncated.'"
        )


def _pg_upgrade() -> None:
    op.execute("CREATE SEQUENCE estadisticas_deltas_seq")
    op.execute(PG_PLEGAR)
    op.execute(
        "COMMENT ON FUNCTION estadisticas_plegar() IS 'Moves the committed rows of the five "
        "estadisticas_*_delta tables into their rollups (slot 0) and keeps "
        "estadisticas_retencion; one fold at a time (advisory lock).'"
    )
    op.execute(PG_TAL_VEZ)
    op.execute(
        "COMMENT ON FUNCTION estadisticas_tal_vez_plegar() IS 'Called by the statistics "
        f"triggers after a small statement: folds once every {EVERY} statements, in READ "
        "COMMITTED, unless a fold is running (never waits).'"
    )
    _drop_row_triggers()
    old = _rollups_0002()
    # 0002's bodies upsert the rollups directly: the bulk path, into slot 0.
    directo = {stem: (body, update_only) for _t, stem, _c, body, update_only, _m in old.PG_TRIGGERS}
    for table, stem, cols, body, update_only, comment in PG_TRIGGERS:
        for op_name, suffix in OPS.items():
            changed = "nuevos" if op_name != "DELETE" else "viejos"
            source = _pg_source(op_name, cols)
            deltas = body + (update_only if op_name == "UPDATE" else "")
            bulk = directo[stem][0] + (directo[stem][1] if op_name == "UPDATE" else "")
            bulk = bulk.replace(old.PG_SLOT, "0::smallint")
            function = f"{stem}_{suffix}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\nIF (SELECT count(*) FROM {changed}) >= {BULK} THEN\n"
                f"PERFORM pg_advisory_xact_lock({LOCK});\n{bulk.replace('{cambio}', source)}\n"
                f"ELSE\n{deltas.replace('{cambio}', source)}\n"
                "PERFORM estadisticas_tal_vez_plegar();\nEND IF;\n"
                "RETURN NULL;\nEND;\n$$"
            )
            op.execute(
                f"COMMENT ON FUNCTION {function}() IS '{comment} (after {op_name}); "
                "sometimes folds them (estadisticas_tal_vez_plegar). A statement of "
                f">= {BULK} rows upserts the rollups directly instead, holding the fold lock.'"
            )
            op.execute(
                f"CREATE TRIGGER {function} AFTER {op_name} ON {table} "
                f"{_pg_referencing(op_name)} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    _truncate_functions(with_deltas=True)


def _collapse_slots() -> None:
    """Add the rows of every pid slot into slot 0 (0002 spread hot rows over 16)."""
    for table, keys, values in (
        ("estadisticas_pedidos_dia", ("dia", "estado"), ("pedidos",)),
        ("estadisticas_ventas_dia", ("dia", "metodo_pago"), ("pedidos", "total_centimos")),
        ("estadisticas_usuarios_dia", ("dia", "rol"), ("usuarios",)),
        ("estadisticas_retencion", (), ("con_pedidos", "recurrentes")),
    ):
        cols = ", ".join((*keys, "slot", *values))
        key_list = ", ".join(keys)
        sums = ", ".join(f"sum({v})" for v in values)
        sets = ", ".join(f"{v} = r.{v} + EXCLUDED.{v}" for v in values)
        group = f"GROUP BY {key_list}" if keys else ""
        select_keys = f"{key_list}, " if keys else ""
        op.execute(
            f"WITH moved AS (DELETE FROM {table} WHERE slot <> 0 RETURNING {cols}) "
            f"INSERT INTO {table} AS r ({cols}) SELECT {select_keys}0, {sums} FROM moved "
            f"{group} HAVING count(*) > 0 "
            f"ON CONFLICT ({', '.join((*keys, 'slot'))}) DO UPDATE SET {sets}"
        )


def _rollups_0002():
    """Migration 0002's module: downgrade restores its trigger functions as they were."""
    path = Path(__file__).with_name("0002_estadisticas_rollups.py")
    spec = importlib.util.spec_from_file_location("estadisticas_rollups_0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pg_downgrade() -> None:
    # Writers in flight commit their deltas before the fold; new ones wait for the swap
    # (as 0008 and 0009 do: without it a DBA's probe lost an open order's deltas with
    # the delta tables this drops).
    op.execute("LOCK TABLE pedidos, detalles_pedido, usuarios IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT estadisticas_plegar()")
    _drop_row_triggers()
    old = _rollups_0002()
    for table, stem, cols, body, update_only, comment in old.PG_TRIGGERS:
        for op_name, suffix in old.OPS.items():
            sql = body + (update_only if op_name == "UPDATE" else "")
            function = f"{stem}_{suffix}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n{sql.replace('{cambio}', old._pg_source(op_name, cols))}\n"
                f"RETURN NULL;\nEND;\n$$"
            )
            op.execute(f"COMMENT ON FUNCTION {function}() IS '{comment} (after {op_name}).'")
            op.execute(
                f"CREATE TRIGGER {function} AFTER {op_name} ON {table} "
                f"{old._pg_referencing(op_name)} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    _truncate_functions(with_deltas=False)
    op.execute("DROP FUNCTION estadisticas_tal_vez_plegar()")
    op.execute("DROP FUNCTION estadisticas_plegar()")
    op.execute("DROP SEQUENCE estadisticas_deltas_seq")


# Deltas are inserted and deleted all day: vacuum them after every 10,000 dead or
# inserted rows, whatever their size, so the fold and the readers scan few pages.
DELTA_STORAGE = {
    "autovacuum_vacuum_scale_factor": 0,
    "autovacuum_vacuum_threshold": 10_000,
    "autovacuum_vacuum_insert_scale_factor": 0,
    "autovacuum_vacuum_insert_threshold": 10_000,
}


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, columns in DELTAS.items():
        op.create_table(name, *(sa.Column(c, t, nullable=False) for c, t in columns))
        if postgres:
            storage = ", ".join(f"{k} = {v}" for k, v in DELTA_STORAGE.items())
            op.execute(f"ALTER TABLE {name} SET ({storage})")
    if postgres:
        _collapse_slots()
        _pg_upgrade()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    for name in DELTAS:
        op.drop_table(name)
