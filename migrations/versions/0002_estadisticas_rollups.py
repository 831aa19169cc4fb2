"""Statistics rollups maintained by the database, in the writer's transaction.

Six summary tables (see electro_isla/estadisticas/models.py) hold what the
dashboard figures are made of. Triggers on pedidos, detalles_pedido and usuarios
keep them exact whoever writes (the API, raw SQL, COPY, a restore):

- PostgreSQL: AFTER ... FOR EACH STATEMENT triggers with transition tables
  (REFERENCING OLD/NEW TABLE), so a COPY or a bulk UPDATE of a million rows
  costs a few GROUP BYs, not a million trigger calls. Every change is applied as
  "the new rows count +1, the old rows count -1", grouped by the rollup key and
  upserted in key order (so two writers lock rollup rows in the same order).
  Hot rows are spread over 16 slots by backend pid.
- SQLite (the embedded default): the same rules as FOR EACH ROW triggers.

Sale = estado in (confirmado, en_preparacion, en_camino, entregado): a pedido
entering a sale state adds its lines to productos_vendidos, leaving one takes
them away; a changed created_at, metodo_pago, total, usuario_id or line moves
what it must. Deleting a pedido first deletes its lines (a BEFORE DELETE row
trigger, what ON DELETE CASCADE would do), so the lines' trigger still sees the
pedido's estado. TRUNCATE empties the rollups built from the truncated table.

The upgrade backfills from the existing rows; downgrade removes everything.

Revision ID: 0002_estadisticas_rollups
Revises: 0001_initial
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_estadisticas_rollups"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

VENTA = "('confirmado', 'en_preparacion', 'en_camino', 'entregado')"
SLOTS = 16
PG_SLOT = f"(pg_backend_pid() % {SLOTS})::smallint"


def _tables() -> None:
    op.create_table(
        "estadisticas_pedidos_dia",
        sa.Column("dia", sa.Date(), nullable=False),
        sa.Column("estado", sa.String(length=20), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("pedidos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dia", "estado", "slot", name=op.f("pk_estadisticas_pedidos_dia")),
    )
    op.create_table(
        "estadisticas_ventas_dia",
        sa.Column("dia", sa.Date(), nullable=False),
        sa.Column("metodo_pago", sa.String(length=20), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("pedidos", sa.BigInteger(), nullable=False),
        sa.Column("total_centimos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dia", "metodo_pago", "slot", name=op.f("pk_estadisticas_ventas_dia")
        ),
    )
    op.create_table(
        "estadisticas_productos_vendidos",
        sa.Column("producto_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cantidad", sa.BigInteger(), nullable=False),
        sa.Column("ingresos_centimos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("producto_id", name=op.f("pk_estadisticas_productos_vendidos")),
    )
    op.create_index(
        "ix_estadisticas_productos_vendidos_cantidad",
        "estadisticas_productos_vendidos",
        ["cantidad"],
    )
    op.create_table(
        "estadisticas_usuarios_pedidos",
        sa.Column("usuario_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pedidos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("usuario_id", name=op.f("pk_estadisticas_usuarios_pedidos")),
    )
    op.create_index(
        "ix_estadisticas_usuarios_pedidos_pedidos", "estadisticas_usuarios_pedidos", ["pedidos"]
    )
    op.create_table(
        "estadisticas_retencion",
        sa.Column("slot", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("con_pedidos", sa.BigInteger(), nullable=False),
        sa.Column("recurrentes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_estadisticas_retencion")),
    )
    op.create_table(
        "estadisticas_usuarios_dia",
        sa.Column("dia", sa.Date(), nullable=False),
        sa.Column("rol", sa.String(length=20), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("usuarios", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dia", "rol", "slot", name=op.f("pk_estadisticas_usuarios_dia")),
    )


TABLES = (
    "estadisticas_usuarios_dia",
    "estadisticas_retencion",
    "estadisticas_usuarios_pedidos",
    "estadisticas_productos_vendidos",
    "estadisticas_ventas_dia",
    "estadisticas_pedidos_dia",
)

# -- PostgreSQL ------------------------------------------------------------------

# Each body is written once against a CTE `cambio` of (row columns..., signo);
# _pg_source() gives `cambio` for INSERT (+1 new rows), DELETE (-1 old rows) and
# UPDATE (both). The bodies never read the table the trigger is on.

PG_PEDIDOS_COLS = "id, usuario_id, estado, metodo_pago, total, created_at"

# One statement (data-modifying CTEs): one executor start per write, and the same
# table order for every writer.
PG_PEDIDOS_BODY = f"""
    WITH cambio AS ({{cambio}}),
    -- pedidos per UTC day and estado
    por_dia AS (
        INSERT INTO estadisticas_pedidos_dia AS r (dia, estado, slot, pedidos)
        SELECT dia, estado, {PG_SLOT}, n FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS dia, estado, sum(signo) AS n
            FROM cambio GROUP BY 1, 2
        ) c WHERE n <> 0 ORDER BY dia, estado
        ON CONFLICT (dia, estado, slot) DO UPDATE SET pedidos = r.pedidos + EXCLUDED.pedidos
        RETURNING 1
    ),
    -- sales per UTC day and metodo_pago: count and cents
    ventas AS (
        INSERT INTO estadisticas_ventas_dia AS r (dia, metodo_pago, slot, pedidos, total_centimos)
        SELECT dia, metodo_pago, {PG_SLOT}, n, centimos FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS dia, metodo_pago, sum(signo) AS n,
                   sum(signo * (total * 100)::bigint) AS centimos
            FROM cambio WHERE estado IN {VENTA} GROUP BY 1, 2
        ) c WHERE n <> 0 OR centimos <> 0 ORDER BY dia, metodo_pago
        ON CONFLICT (dia, metodo_pago, slot) DO UPDATE SET
            pedidos = r.pedidos + EXCLUDED.pedidos,
            total_centimos = r.total_centimos + EXCLUDED.total_centimos
        RETURNING 1
    ),
    -- pedidos per usuario, and the retention counters from each usuario's old/new count
    delta AS (
        SELECT usuario_id, sum(signo) AS d FROM cambio GROUP BY usuario_id HAVING sum(signo) <> 0
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
    SELECT {PG_SLOT}, con, rec FROM cuenta WHERE con <> 0 OR rec <> 0
    ON CONFLICT (slot) DO UPDATE SET
        con_pedidos = r.con_pedidos + EXCLUDED.con_pedidos,
        recurrentes = r.recurrentes + EXCLUDED.recurrentes;
"""

# Only an UPDATE can change whether existing lines belong to a sale: a new pedido
# has no lines yet (the foreign key), a deleted one lost them before (see below).
PG_PEDIDOS_LINES = f"""
    -- lines of pedidos that entered (+) or left (-) a sale state
    WITH cambio AS ({{cambio}}),
    venta AS (
        SELECT id, sum(signo) AS s FROM cambio WHERE estado IN {VENTA}
        GROUP BY id HAVING sum(signo) <> 0
    )
    INSERT INTO estadisticas_productos_vendidos AS r (producto_id, cantidad, ingresos_centimos)
    SELECT d.producto_id, sum(v.s * d.cantidad), sum(v.s * (d.subtotal * 100)::bigint)
    FROM venta v JOIN detalles_pedido d ON d.pedido_id = v.id
    GROUP BY d.producto_id ORDER BY d.producto_id
    ON CONFLICT (producto_id) DO UPDATE SET
        cantidad = r.cantidad + EXCLUDED.cantidad,
        ingresos_centimos = r.ingresos_centimos + EXCLUDED.ingresos_centimos;
"""

PG_DETALLES_COLS = "pedido_id, producto_id, cantidad, subtotal"

PG_DETALLES_BODY = f"""
    -- sale lines per producto: units and cents
    WITH cambio AS ({{cambio}})
    INSERT INTO estadisticas_productos_vendidos AS r (producto_id, cantidad, ingresos_centimos)
    SELECT producto_id, n, centimos FROM (
        SELECT c.producto_id, sum(c.signo * c.cantidad) AS n,
               sum(c.signo * (c.subtotal * 100)::bigint) AS centimos
        FROM cambio c
        -- one index lookup per changed line: a hash of every pedido would cost a scan
        -- of the whole table per COPY chunk
        WHERE (SELECT p.estado FROM pedidos p WHERE p.id = c.pedido_id) IN {VENTA}
        GROUP BY c.producto_id
    ) c WHERE n <> 0 OR centimos <> 0 ORDER BY producto_id
    ON CONFLICT (producto_id) DO UPDATE SET
        cantidad = r.cantidad + EXCLUDED.cantidad,
        ingresos_centimos = r.ingresos_centimos + EXCLUDED.ingresos_centimos;
"""

PG_USUARIOS_COLS = "rol, date_joined"

PG_USUARIOS_BODY = f"""
    -- usuarios per UTC day of date_joined and rol
    WITH cambio AS ({{cambio}})
    INSERT INTO estadisticas_usuarios_dia AS r (dia, rol, slot, usuarios)
    SELECT dia, rol, {PG_SLOT}, n FROM (
        SELECT (date_joined AT TIME ZONE 'UTC')::date AS dia, rol, sum(signo) AS n
        FROM cambio GROUP BY 1, 2
    ) c WHERE n <> 0 ORDER BY dia, rol
    ON CONFLICT (dia, rol, slot) DO UPDATE SET usuarios = r.usuarios + EXCLUDED.usuarios;
"""

# (source table, function name stem, columns, body, extra body for UPDATE only, comment)
PG_TRIGGERS = (
    (
        "pedidos",
        "estadisticas_pedidos",
        PG_PEDIDOS_COLS,
        PG_PEDIDOS_BODY,
        PG_PEDIDOS_LINES,
        "Keeps estadisticas_pedidos_dia, estadisticas_ventas_dia, "
        "estadisticas_usuarios_pedidos, estadisticas_retencion (and, on UPDATE, "
        "estadisticas_productos_vendidos) in step with pedidos",
    ),
    (
        "detalles_pedido",
        "estadisticas_detalles",
        PG_DETALLES_COLS,
        PG_DETALLES_BODY,
        "",
        "Keeps estadisticas_productos_vendidos in step with the lines of sales",
    ),
    (
        "usuarios",
        "estadisticas_usuarios",
        PG_USUARIOS_COLS,
        PG_USUARIOS_BODY,
        "",
        "Keeps estadisticas_usuarios_dia in step with usuarios",
    ),
)

OPS = {"INSERT": "ins", "UPDATE": "upd", "DELETE": "del"}


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


def _pg_upgrade() -> None:
    for table, stem, cols, body, update_only, comment in PG_TRIGGERS:
        for op_name, suffix in OPS.items():
            sql = body + (update_only if op_name == "UPDATE" else "")
            function = f"{stem}_{suffix}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n{sql.replace('{cambio}', _pg_source(op_name, cols))}\n"
                f"RETURN NULL;\nEND;\n$$"
            )
            op.execute(f"COMMENT ON FUNCTION {function}() IS '{comment} (after {op_name}).'")
            op.execute(
                f"CREATE TRIGGER {function} AFTER {op_name} ON {table} "
                f"{_pg_referencing(op_name)} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    # Deleting a pedido deletes its lines first, while the pedido (and so whether it is
    # a sale) is still visible to the lines' trigger; ON DELETE CASCADE would run after.
    op.execute(
        """CREATE FUNCTION estadisticas_pedidos_antes_del() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM detalles_pedido WHERE pedido_id = OLD.id;
            RETURN OLD;
        END;
        $$"""
    )
    op.execute(
        "COMMENT ON FUNCTION estadisticas_pedidos_antes_del() IS 'Deletes a pedido''s lines "
        "before the pedido, so estadisticas_detalles_del still sees whether they were a sale.'"
    )
    op.execute(
        "CREATE TRIGGER estadisticas_pedidos_antes_del BEFORE DELETE ON pedidos "
        "FOR EACH ROW EXECUTE FUNCTION estadisticas_pedidos_antes_del()"
    )
    # TRUNCATE fires no DELETE triggers: empty what was built from the truncated table.
    for table, targets in (
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
    ):
        function = f"estadisticas_{table}_truncate"
        deletes = "\n".join(f"DELETE FROM {t};" for t in targets)
        op.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{deletes}\nRETURN NULL;\nEND;\n$$"
        )
        op.execute(
            f"COMMENT ON FUNCTION {function}() IS 'Empties {', '.join(targets)} "
            f"when {table} is truncated.'"
        )
        op.execute(
            f"CREATE TRIGGER {function} AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def _pg_downgrade() -> None:
    for table, stem, *_ in PG_TRIGGERS:
        for suffix in OPS.values():
            op.execute(f"DROP TRIGGER IF EXISTS {stem}_{suffix} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {stem}_{suffix}()")
        op.execute(f"DROP TRIGGER IF EXISTS estadisticas_{table}_truncate ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS estadisticas_{table}_truncate()")
    op.execute("DROP TRIGGER IF EXISTS estadisticas_pedidos_antes_del ON pedidos")
    op.execute("DROP FUNCTION IF EXISTS estadisticas_pedidos_antes_del()")


# -- SQLite ----------------------------------------------------------------------

# Row-level triggers; SQLite serialises writers, so one slot (0). {r} is NEW or OLD,
# {s} the sign (1 or -1). Upserts need a WHERE on INSERT ... SELECT in a trigger.


def _lite_cents(expr: str) -> str:
    return f"CAST(ROUND({expr} * 100) AS INTEGER)"


def _lite_pedido(r: str, s: str) -> str:
    """Statements adding (s = 1) or removing (s = -1) pedido row `r` from the rollups."""
    return f"""
    INSERT INTO estadisticas_pedidos_dia (dia, estado, slot, pedidos)
    VALUES (date({r}.created_at), {r}.estado, 0, {s})
    ON CONFLICT (dia, estado, slot) DO UPDATE SET pedidos = pedidos + excluded.pedidos;
    INSERT INTO estadisticas_ventas_dia (dia, metodo_pago, slot, pedidos, total_centimos)
    SELECT date({r}.created_at), {r}.metodo_pago, 0, {s}, {s} * {_lite_cents(f"{r}.total")}
    WHERE {r}.estado IN {VENTA}
    ON CONFLICT (dia, metodo_pago, slot) DO UPDATE SET
        pedidos = pedidos + excluded.pedidos,
        total_centimos = total_centimos + excluded.total_centimos;
    INSERT INTO estadisticas_usuarios_pedidos (usuario_id, pedidos) VALUES ({r}.usuario_id, {s})
    ON CONFLICT (usuario_id) DO UPDATE SET pedidos = pedidos + excluded.pedidos;
    INSERT INTO estadisticas_retencion (slot, con_pedidos, recurrentes)
    SELECT 0, (pedidos > 0) - (pedidos - {s} > 0), (pedidos > 1) - (pedidos - {s} > 1)
    FROM estadisticas_usuarios_pedidos WHERE usuario_id = {r}.usuario_id
    ON CONFLICT (slot) DO UPDATE SET
        con_pedidos = con_pedidos + excluded.con_pedidos,
        recurrentes = recurrentes + excluded.recurrentes;
    """


def _lite_lineas(pedido: str, s: str) -> str:
    """Add (s = 1) or remove (s = -1) every line of pedido id `pedido` from the producto sums."""
    return f"""
    INSERT INTO estadisticas_productos_vendidos (producto_id, cantidad, ingresos_centimos)
    SELECT producto_id, {s} * sum(cantidad), {s} * sum({_lite_cents("subtotal")})
    FROM detalles_pedido WHERE pedido_id = {pedido} GROUP BY producto_id
    ON CONFLICT (producto_id) DO UPDATE SET
        cantidad = cantidad + excluded.cantidad,
        ingresos_centimos = ingresos_centimos + excluded.ingresos_centimos;
    """


def _lite_linea(r: str, s: str) -> str:
    """Add or remove detalles_pedido row `r` when its pedido is a sale."""
    return f"""
    INSERT INTO estadisticas_productos_vendidos (producto_id, cantidad, ingresos_centimos)
    SELECT {r}.producto_id, {s} * {r}.cantidad, {s} * {_lite_cents(f"{r}.subtotal")}
    FROM pedidos WHERE id = {r}.pedido_id AND estado IN {VENTA}
    ON CONFLICT (producto_id) DO UPDATE SET
        cantidad = cantidad + excluded.cantidad,
        ingresos_centimos = ingresos_centimos + excluded.ingresos_centimos;
    """


def _lite_usuario(r: str, s: str) -> str:
    return f"""
    INSERT INTO estadisticas_usuarios_dia (dia, rol, slot, usuarios)
    VALUES (date({r}.date_joined), {r}.rol, 0, {s})
    ON CONFLICT (dia, rol, slot) DO UPDATE SET usuarios = usuarios + excluded.usuarios;
    """


def _was_sale(r: str) -> str:
    return f"{r}.estado IN {VENTA}"


# (name, timing and event, body). SQLite has no comments on triggers: each name
# says what it maintains, and the bodies above say how.
SQLITE_TRIGGERS = (
    ("estadisticas_pedidos_ins", "AFTER INSERT ON pedidos", _lite_pedido("NEW", "1")),
    (
        "estadisticas_pedidos_upd",
        "AFTER UPDATE ON pedidos",
        _lite_pedido("OLD", "-1") + _lite_pedido("NEW", "1"),
    ),
    # Lines of a pedido that left a sale state (or changed id) leave the producto sums...
    (
        "estadisticas_pedidos_upd_lineas_salen",
        f"AFTER UPDATE ON pedidos FOR EACH ROW WHEN {_was_sale('OLD')} "
        f"AND NOT ({_was_sale('NEW')} AND NEW.id = OLD.id)",
        _lite_lineas("OLD.id", "-1"),
    ),
    # ...and those of a pedido that entered one join them.
    (
        "estadisticas_pedidos_upd_lineas_entran",
        f"AFTER UPDATE ON pedidos FOR EACH ROW WHEN {_was_sale('NEW')} "
        f"AND NOT ({_was_sale('OLD')} AND NEW.id = OLD.id)",
        _lite_lineas("NEW.id", "1"),
    ),
    # A deleted pedido's lines go first, while its estado is still readable.
    (
        "estadisticas_pedidos_antes_del",
        "BEFORE DELETE ON pedidos",
        "DELETE FROM detalles_pedido WHERE pedido_id = OLD.id;",
    ),
    ("estadisticas_pedidos_del", "AFTER DELETE ON pedidos", _lite_pedido("OLD", "-1")),
    ("estadisticas_detalles_ins", "AFTER INSERT ON detalles_pedido", _lite_linea("NEW", "1")),
    (
        "estadisticas_detalles_upd",
        "AFTER UPDATE ON detalles_pedido",
        _lite_linea("OLD", "-1") + _lite_linea("NEW", "1"),
    ),
    ("estadisticas_detalles_del", "AFTER DELETE ON detalles_pedido", _lite_linea("OLD", "-1")),
    ("estadisticas_usuarios_ins", "AFTER INSERT ON usuarios", _lite_usuario("NEW", "1")),
    (
        "estadisticas_usuarios_upd",
        "AFTER UPDATE OF date_joined, rol ON usuarios",
        _lite_usuario("OLD", "-1") + _lite_usuario("NEW", "1"),
    ),
    ("estadisticas_usuarios_del", "AFTER DELETE ON usuarios", _lite_usuario("OLD", "-1")),
)


def _sqlite_upgrade() -> None:
    for name, when, body in SQLITE_TRIGGERS:
        each = "" if "FOR EACH ROW" in when else " FOR EACH ROW"
        op.execute(f"CREATE TRIGGER {name} {when}{each} BEGIN {body} END")


def _sqlite_downgrade() -> None:
    for name, *_ in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


# -- backfill --------------------------------------------------------------------


def _backfill(dialect: str) -> None:
    if dialect == "postgresql":

        def dia(column: str) -> str:
            return f"({column} AT TIME ZONE 'UTC')::date"

        def cents(column: str) -> str:
            return f"({column} * 100)::bigint"

    else:

        def dia(column: str) -> str:
            return f"date({column})"

        cents = _lite_cents

    op.execute(
        "INSERT INTO estadisticas_pedidos_dia (dia, estado, slot, pedidos) "
        f"SELECT {dia('created_at')}, estado, 0, count(*) FROM pedidos GROUP BY 1, 2"
    )
    op.execute(
        "INSERT INTO estadisticas_ventas_dia (dia, metodo_pago, slot, pedidos, total_centimos) "
        f"SELECT {dia('created_at')}, metodo_pago, 0, count(*), sum({cents('total')}) "
        f"FROM pedidos WHERE estado IN {VENTA} GROUP BY 1, 2"
    )
    op.execute(
        "INSERT INTO estadisticas_usuarios_pedidos (usuario_id, pedidos) "
        "SELECT usuario_id, count(*) FROM pedidos GROUP BY usuario_id"
    )
    op.execute(
        "INSERT INTO estadisticas_retencion (slot, con_pedidos, recurrentes) "
        "SELECT 0, count(*), coalesce(sum(CASE WHEN pedidos > 1 THEN 1 ELSE 0 END), 0) "
        "FROM estadisticas_usuarios_pedidos WHERE pedidos > 0"
    )
    op.execute(
        "INSERT INTO estadisticas_productos_vendidos (producto_id, cantidad, ingresos_centimos) "
        f"SELECT d.producto_id, sum(d.cantidad), sum({cents('d.subtotal')}) "
        "FROM detalles_pedido d JOIN pedidos p ON p.id = d.pedido_id "
        f"WHERE p.estado IN {VENTA} GROUP BY d.producto_id"
    )
    op.execute(
        "INSERT INTO estadisticas_usuarios_dia (dia, rol, slot, usuarios) "
        f"SELECT {dia('date_joined')}, rol, 0, count(*) FROM usuarios GROUP BY 1, 2"
    )


def upgrade():
    _tables()
    dialect = op.get_bind().dialect.name
    # Triggers first: creating one locks its table against writes until COMMIT, so
    # the backfill below reads every row no trigger will ever add again.
    if dialect == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()
    _backfill(dialect)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    else:
        _sqlite_downgrade()
    for table in TABLES:
        op.drop_table(table)
