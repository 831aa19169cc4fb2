"""An order's rows are its own statistics deltas: no INSERT trigger on pedidos or lines.

Under 0009-0016 every INSERT into pedidos or detalles_pedido ran a plpgsql row
trigger that inserted a delta row (the line's also read its pedido): at 64 clients
that work made an order cost the server ~1.5x its CPU without triggers
(BENCHMARKS.md, issue 20). From here on (PostgreSQL; the design and its reasoning:
docs/issue-20-filas-como-deltas.md):

- Every pedido and line carries the id of the transaction that inserted it
  (`alta_xact xid8 DEFAULT pg_current_xact_id()`, indexed), and one row,
  estadisticas_horizonte.xact (H), splits them: rows with alta_xact < H are in the
  rollups or their delta tables ("taken"), rows at or past H are read as they are.
- The fold (estadisticas_plegar, under its advisory lock) first takes the rows of
  [H, the oldest running xid) into the delta tables and moves H there: every
  transaction below that xid has ended, so no committed row is skipped or taken
  twice. Then it folds the deltas as before (estadisticas_plegar_deltas, 0008's).
  A transaction that inserted a pedido whose draw ticked (1 in 256, the WHEN of a
  deferred constraint trigger) folds at its COMMIT; the UPDATE and DELETE row
  functions no longer fold: a fold in the middle of a statement would take rows the
  statement changed before their own triggers ran, which would then count the
  change again (a reviewer found it through a WITH (UPDATE ...) INSERT statement).
- Readers read two views instead of the delta tables of pedidos and lines:
  estadisticas_pedidos_pendientes and estadisticas_productos_vendidos_pendientes,
  each its delta table plus the untaken rows. One snapshot sees a fold wholly or not.
- An UPDATE or DELETE writes deltas only for a taken row (an untaken one is read as
  it is now). It reads H under the fold's lock taken SHARED and held to COMMIT, so
  no fold takes the row between the change and its COMMIT; a REPEATABLE READ writer
  reads H FOR SHARE, so a fold committed since its snapshot is a serialization
  failure, not a lost change. A row this transaction inserted is never taken: no
  lock. The bulk UPDATE/DELETE functions count only taken rows. alta_xact is not to
  be changed (the UPDATE triggers refuse it, but during estadisticas-rebuild).
- SQLite: the two views are its delta tables (its triggers write the rollups).

The upgrade waits for the writers in flight, folds, then swaps. The downgrade takes
every row (no writer in flight under its lock) and puts 0016's schema back.

Revision ID: 0017_filas_como_deltas
Revises: 0016_funciones_con_su_esquema
Create Date: 2026-12-07
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0017_filas_como_deltas"
down_revision = "0016_funciones_con_su_esquema"
branch_labels = None
depends_on = None


def _load(name: str):
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"m_{name}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


m0007 = _load("0007_rollups_sin_fila_caliente")
m0009 = _load("0009_deltas_por_fila")
m0011 = _load("0011_tick_sin_secuencia")
m0015 = _load("0015_lineas_tras_su_pedido")
VENTA, LOCK, EVERY = m0009.VENTA, m0009.LOCK, m0009.EVERY
TABLAS = ("pedidos", "detalles_pedido")
# The readers' horizon: a STABLE function, which the planner evaluates to estimate the
# untaken rows from alta_xact's statistics (a subquery's value it cannot know: it
# guessed a third of pedidos and seq-scanned them, 4-6x a MISS at 1M pedidos).
HORIZONTE_ACTUAL = "estadisticas_horizonte_actual()"
# The horizon as a writer of taken rows must read it (locked shared; FOR SHARE outside
# READ COMMITTED): the bulk functions' filters.
HORIZONTE_VISTO = "(SELECT estadisticas_horizonte_visto())"
# Set (transaction-local) by estadisticas_horizonte_desde_cero: rebuild's own rewrite.
RECONSTRUYENDO = "current_setting('estadisticas.reconstruyendo', true) = 'on'"

# -- the fold ---------------------------------------------------------------------

PG_TOMAR_FILAS = f"""
CREATE FUNCTION estadisticas_tomar_filas(hasta xid8) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    desde xid8;
BEGIN
    -- Called under the fold's lock (exclusive). Rows of [H, hasta) into the deltas.
    SELECT xact INTO desde FROM estadisticas_horizonte;
    IF hasta < desde THEN
        -- Impossible in one cluster (xids only grow): a horizon restored from another.
        RAISE WARNING 'estadisticas_horizonte (%) is past the oldest running transaction '
            '(%): restored from another cluster? Run flask estadisticas-rebuild.', desde, hasta;
        RETURN;
    END IF;
    INSERT INTO estadisticas_pedidos_delta
        (dia, estado, metodo_pago, usuario_id, pedidos, total_centimos)
    SELECT (created_at AT TIME ZONE 'UTC')::date, estado, metodo_pago, usuario_id, 1,
           (total * 100)::bigint
    FROM pedidos WHERE alta_xact >= desde AND alta_xact < hasta;
    -- A line counts if its pedido is a sale now: its writer, if any, holds the lock
    -- shared until COMMIT, so this fold runs before it or after it.
    INSERT INTO estadisticas_productos_vendidos_delta (producto_id, cantidad, ingresos_centimos)
    SELECT d.producto_id, d.cantidad, (d.subtotal * 100)::bigint
    FROM detalles_pedido d JOIN pedidos p ON p.id = d.pedido_id
    WHERE d.alta_xact >= desde AND d.alta_xact < hasta AND p.estado IN {VENTA};
    UPDATE estadisticas_horizonte SET xact = hasta;
END;
$$"""

PG_PLEGAR = f"""
CREATE FUNCTION estadisticas_plegar() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK});
    -- Every transaction below the oldest running one has ended: its rows are final.
    PERFORM estadisticas_tomar_filas(pg_snapshot_xmin(pg_current_snapshot()));
    PERFORM estadisticas_plegar_deltas();
END;
$$"""

PG_ALTA_TAL_VEZ = """
CREATE FUNCTION estadisticas_alta_tal_vez_plegar() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM estadisticas_tal_vez_plegar();
    RETURN NULL;
END;
$$"""

# -- UPDATE and DELETE: deltas for taken rows only ----------------------------------

PG_HORIZONTE_VISTO = f"""
CREATE FUNCTION estadisticas_horizonte_visto() RETURNS xid8 LANGUAGE plpgsql AS $$
DECLARE
    h xid8;
BEGIN
    -- Held to COMMIT: no fold takes the row being changed before this change commits.
    PERFORM pg_advisory_xact_lock_shared({LOCK});
    IF current_setting('transaction_isolation') = 'read committed' THEN
        SELECT xact INTO h FROM estadisticas_horizonte;  -- this statement's snapshot
    ELSE
        -- An older snapshot: a fold committed since it is a serialization failure (FOR
        -- SHARE: a KEY SHARE lock would accept the old row, the fold's UPDATE is no key's).
        SELECT xact INTO h FROM estadisticas_horizonte FOR SHARE;
    END IF;
    IF h IS NULL THEN  -- a snapshot from before migration 0017: no horizon to go by
        RAISE EXCEPTION 'statistics horizon not visible to this snapshot; retry'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN h;
END;
$$"""


def _guarda(tabla: str) -> str:
    return f"""
    IF {RECONSTRUYENDO} THEN
        RETURN NULL;  -- estadisticas-rebuild rewrites alta_xact and every rollup
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.alta_xact IS DISTINCT FROM OLD.alta_xact THEN
            RAISE EXCEPTION '{tabla}.alta_xact belongs to the statistics: not to be changed';
        END IF;
    END IF;
    -- A row this transaction inserted is not taken (no fold sees it before COMMIT).
    IF OLD.alta_xact = pg_current_xact_id() THEN
        RETURN NULL;
    END IF;
    h := estadisticas_horizonte_visto();"""


def _lineas(pedido: str, s: str) -> str:
    """Add (s = 1) or remove (s = -1) the taken lines of pedido id `pedido`."""
    return f"""
            INSERT INTO estadisticas_productos_vendidos_delta
                (producto_id, cantidad, ingresos_centimos)
            SELECT producto_id, {s} * cantidad, {s} * (subtotal * 100)::bigint
            FROM detalles_pedido WHERE pedido_id = {pedido} AND alta_xact < h;"""


PG_PEDIDOS_FILA = f"""
CREATE OR REPLACE FUNCTION estadisticas_pedidos_fila() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h xid8;
BEGIN{_guarda("pedidos")}
    IF OLD.alta_xact < h THEN  -- taken: the change is a delta
        {m0009._pedido("OLD", "-1")}
        IF TG_OP = 'UPDATE' THEN
            {m0009._pedido("NEW", "1")}
        END IF;
    END IF;
    -- An UPDATE moves the pedido's taken lines in or out of a sale (whether or not
    -- the pedido is taken: a line's transaction may have had the older xid).
    IF TG_OP = 'UPDATE' THEN
        IF OLD.estado IN {VENTA} AND NOT (NEW.id = OLD.id AND NEW.estado IN {VENTA}) THEN
            {_lineas("OLD.id", "-1")}
        END IF;
        IF NEW.estado IN {VENTA} AND NOT (NEW.id = OLD.id AND OLD.estado IN {VENTA}) THEN
            {_lineas("NEW.id", "1")}
        END IF;
    END IF;
    RETURN NULL;
END;
$$"""

PG_DETALLES_FILA = f"""
CREATE OR REPLACE FUNCTION estadisticas_detalles_fila() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h xid8;
    estado text;
    propio boolean;
BEGIN{_guarda("detalles_pedido")}
    IF OLD.alta_xact >= h THEN  -- not taken: the readers see it as it is
        RETURN NULL;
    END IF;
    {m0015._linea("OLD", "-1")}
    IF TG_OP = 'UPDATE' THEN
        {m0015._linea("NEW", "1")}
    END IF;
    RETURN NULL;
END;
$$"""

PG_DESDE_CERO = f"""
CREATE FUNCTION estadisticas_horizonte_desde_cero() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    hasta xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
    -- estadisticas-rebuild, under the fold's lock and a lock on pedidos and lines (no
    -- writer of theirs in flight): every row is counted from scratch, so every row is
    -- taken. Rows tagged at or past the oldest running xid (their transaction ended
    -- after an older one began; or a restore from another cluster) are retagged.
    PERFORM set_config('estadisticas.reconstruyendo', 'on', true);
    UPDATE pedidos SET alta_xact = '0' WHERE alta_xact >= hasta;
    UPDATE detalles_pedido SET alta_xact = '0' WHERE alta_xact >= hasta;
    UPDATE estadisticas_horizonte SET xact = hasta;
END;
$$"""

# -- bulk mode: taken rows only -------------------------------------------------------

MASIVOS = (
    "estadisticas_pedidos_masivo_upd",
    "estadisticas_pedidos_masivo_del",
    "estadisticas_detalles_masivo_upd",
    "estadisticas_detalles_masivo_del",
)
# pedidos_masivo_upd's second statement moves lines: its pedidos are not filtered,
# its lines are (as the row function's line moves).
LINEAS_DE_PEDIDOS = "-- lines of pedidos that entered"
JOIN_LINEAS = "FROM venta v JOIN detalles_pedido d ON d.pedido_id = v.id"


def _tomadas(transicion: str) -> tuple[str, str]:
    return (
        f" FROM {transicion}",
        f" FROM (SELECT * FROM {transicion} WHERE alta_xact < {HORIZONTE_VISTO}) AS {transicion}",
    )


def _masivo(sql: str, upgrade: bool) -> str:
    cabeza, sep, cola = sql.partition(LINEAS_DE_PEDIDOS)
    for transicion in ("nuevos", "viejos"):
        old, new = _tomadas(transicion)
        cabeza = cabeza.replace(old, new) if upgrade else cabeza.replace(new, old)
    old, new = JOIN_LINEAS, f"{JOIN_LINEAS} AND d.alta_xact < {HORIZONTE_VISTO}"
    cola = cola.replace(old, new) if upgrade else cola.replace(new, old)
    return cabeza + sep + cola


# -- reading --------------------------------------------------------------------------

PG_VISTAS = {
    "estadisticas_pedidos_pendientes": f"""
        SELECT dia, estado, metodo_pago, usuario_id, pedidos, total_centimos
        FROM estadisticas_pedidos_delta
        UNION ALL
        SELECT (created_at AT TIME ZONE 'UTC')::date, estado, metodo_pago, usuario_id,
               1::bigint, (total * 100)::bigint
        FROM pedidos WHERE alta_xact >= {HORIZONTE_ACTUAL}""",
    "estadisticas_productos_vendidos_pendientes": f"""
        SELECT producto_id, cantidad, ingresos_centimos
        FROM estadisticas_productos_vendidos_delta
        UNION ALL
        SELECT d.producto_id, d.cantidad, (d.subtotal * 100)::bigint
        FROM detalles_pedido d JOIN pedidos p ON p.id = d.pedido_id
        WHERE d.alta_xact >= {HORIZONTE_ACTUAL} AND p.estado IN {VENTA}""",
}
SQLITE_VISTAS = {
    "estadisticas_pedidos_pendientes": "SELECT dia, estado, metodo_pago, usuario_id, "
    "pedidos, total_centimos FROM estadisticas_pedidos_delta",
    "estadisticas_productos_vendidos_pendientes": "SELECT producto_id, cantidad, "
    "ingresos_centimos FROM estadisticas_productos_vendidos_delta",
}

PG_HORIZONTE_ACTUAL = """
CREATE FUNCTION estadisticas_horizonte_actual() RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT xact FROM estadisticas_horizonte
$$"""

NUEVAS = {
    "estadisticas_horizonte_actual()": (
        PG_HORIZONTE_ACTUAL,
        "The horizon as the readers'' views read it (STABLE: the planner estimates the "
        "untaken rows with its value).",
    ),
    "estadisticas_tomar_filas(xid8)": (
        PG_TOMAR_FILAS,
        "Under the fold''s lock: inserts the deltas of the pedidos and lines whose "
        "alta_xact is in [estadisticas_horizonte.xact, hasta) and moves the horizon to hasta.",
    ),
    "estadisticas_plegar()": (
        PG_PLEGAR,
        "The fold: takes the rows of every ended transaction (estadisticas_tomar_filas), "
        "then folds the deltas into the rollups (estadisticas_plegar_deltas).",
    ),
    "estadisticas_alta_tal_vez_plegar()": (
        PG_ALTA_TAL_VEZ,
        "At the COMMIT of a transaction that inserted a pedido whose draw ticked (1 in 256, "
        "a deferred constraint trigger''s WHEN): may fold.",
    ),
    "estadisticas_horizonte_visto()": (
        PG_HORIZONTE_VISTO,
        "For an UPDATE or DELETE of a pedido or line: the horizon, read under the fold''s "
        "lock taken shared until COMMIT (FOR SHARE outside READ COMMITTED).",
    ),
    "estadisticas_horizonte_desde_cero()": (
        PG_DESDE_CERO,
        "estadisticas-rebuild: every row taken (alta_xact reset where at or past the "
        "oldest running xid), the horizon moved there.",
    ),
}


def _esquema() -> str:
    return op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar()


def _definicion(name: str) -> str:
    return op.get_bind().exec_driver_sql(f"SELECT pg_get_functiondef('{name}'::regproc)").scalar()


def _update_trigger(tabla: str, stem: str, cols: str) -> None:
    op.execute(f"DROP TRIGGER {stem}_upd ON {tabla}")
    op.execute(
        f"CREATE TRIGGER {stem}_upd AFTER UPDATE ON {tabla} FOR EACH ROW "
        f"WHEN ({m0009._when('UPDATE', cols)}) EXECUTE FUNCTION {stem}_fila()"
    )
    op.execute(
        f"COMMENT ON TRIGGER {stem}_upd ON {tabla} IS 'Statistics deltas of each row after "
        f"UPDATE ({stem}_fila), unless in bulk mode (estadisticas.masivo) or no counted "
        "column changed.'"
    )


def _row_comments() -> None:
    op.execute(
        "COMMENT ON FUNCTION estadisticas_pedidos_fila() IS 'After UPDATE or DELETE of a "
        "taken pedido (alta_xact below the horizon): its estadisticas_pedidos_delta rows, "
        "and its taken lines'' productos deltas when it enters or leaves a sale. Never "
        "folds (a fold between a row''s change and its trigger would take the new row). "
        "Not called in bulk mode.'"
    )
    op.execute(
        "COMMENT ON FUNCTION estadisticas_detalles_fila() IS 'After UPDATE or DELETE of a "
        "taken line: its estadisticas_productos_vendidos deltas when its pedido is a sale "
        "(read FOR SHARE unless this transaction wrote it). Never folds. Not called in bulk mode.'"
    )


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        for vista, sql in SQLITE_VISTAS.items():
            op.execute(f"CREATE VIEW {vista} AS {sql}")
        return
    # Writers in flight commit first (and their deltas are folded); new ones wait.
    op.execute("LOCK TABLE pedidos, detalles_pedido IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT estadisticas_plegar()")
    for tabla in TABLAS:
        # Existing rows are taken ('0'): a constant default rewrites no row.
        op.execute(f"ALTER TABLE {tabla} ADD COLUMN alta_xact xid8 NOT NULL DEFAULT '0'")
        op.execute(f"ALTER TABLE {tabla} ALTER COLUMN alta_xact SET DEFAULT pg_current_xact_id()")
        op.execute(f"CREATE INDEX ix_{tabla}_alta_xact ON {tabla} (alta_xact)")
        op.execute(
            f"COMMENT ON COLUMN {tabla}.alta_xact IS 'The transaction that inserted the row: "
            "below estadisticas_horizonte.xact it is in the statistics rollups, at or past "
            "it the readers add it as it is (migration 0017). Not to be written.'"
        )
    op.execute(
        "CREATE TABLE estadisticas_horizonte ("
        "uno boolean PRIMARY KEY DEFAULT true CHECK (uno), xact xid8 NOT NULL)"
    )
    # A writer that waited on the lock above has an xid at or past this one.
    op.execute(
        "INSERT INTO estadisticas_horizonte (xact) VALUES (pg_snapshot_xmin(pg_current_snapshot()))"
    )
    op.execute(
        "COMMENT ON TABLE estadisticas_horizonte IS 'One row: the pedidos and lines with "
        "alta_xact below xact are in the statistics rollups or their delta tables; the "
        "fold moves it (migration 0017).'"
    )
    op.execute("ALTER FUNCTION estadisticas_plegar() RENAME TO estadisticas_plegar_deltas")
    op.execute(
        "COMMENT ON FUNCTION estadisticas_plegar_deltas() IS 'Folds the delta tables into "
        "the rollups (0008''s fold); estadisticas_plegar takes the rows first.'"
    )
    esquema = _esquema()
    for firma, (sql, comment) in NUEVAS.items():
        op.execute(sql)
        op.execute(f"ALTER FUNCTION {firma} SET search_path = {esquema}, pg_temp")
        op.execute(f"COMMENT ON FUNCTION {firma} IS '{comment}'")
    for sql in (PG_PEDIDOS_FILA, PG_DETALLES_FILA):
        op.execute(
            sql.replace(
                "LANGUAGE plpgsql", f"LANGUAGE plpgsql SET search_path = {esquema}, pg_temp", 1
            )
        )
    _row_comments()
    for tabla, stem in (
        ("pedidos", "estadisticas_pedidos"),
        ("detalles_pedido", "estadisticas_detalles"),
    ):
        op.execute(f"DROP TRIGGER {stem}_ins ON {tabla}")
        op.execute(f"DROP TRIGGER {stem}_masivo_ins ON {tabla}")
        op.execute(
            f"COMMENT ON FUNCTION {stem}_masivo_ins() IS 'Not triggered since migration 0017 "
            "(an inserted row is its own delta); kept for its downgrade.'"
        )
    _update_trigger("pedidos", "estadisticas_pedidos", m0007.PG_PEDIDOS_COLS + ", alta_xact")
    _update_trigger(
        "detalles_pedido", "estadisticas_detalles", m0007.PG_DETALLES_COLS + ", alta_xact"
    )
    # Deferred to COMMIT: the fold runs after every statement of the transaction and
    # every row trigger they queued (a fold in the middle of a statement, e.g. an UPDATE
    # in a WITH beside an INSERT, took rows whose own triggers had not run yet), and
    # holds its exclusive lock only for the COMMIT (no later statement waits behind it).
    op.execute(
        "CREATE CONSTRAINT TRIGGER estadisticas_pedidos_alta_tal_vez_plegar "
        "AFTER INSERT ON pedidos DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f"WHEN (random() < 1.0 / {EVERY}) EXECUTE FUNCTION estadisticas_alta_tal_vez_plegar()"
    )
    op.execute(
        "COMMENT ON TRIGGER estadisticas_pedidos_alta_tal_vez_plegar ON pedidos IS 'The "
        f"fold''s tick (0017): 1 inserted pedido in {EVERY} has its transaction fold at "
        "COMMIT (a deferred constraint trigger).'"
    )
    for name in MASIVOS:
        sql = _definicion(name)
        edited = _masivo(sql, upgrade=True)
        assert edited != sql and _masivo(edited, upgrade=False) == sql, name
        op.execute(edited)
    for vista, sql in PG_VISTAS.items():
        op.execute(f"CREATE VIEW {vista} AS {sql}")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        for vista in SQLITE_VISTAS:
            op.execute(f"DROP VIEW {vista}")
        return
    # No writer in flight: every row is final, take them all, then fold.
    op.execute("LOCK TABLE pedidos, detalles_pedido IN SHARE ROW EXCLUSIVE MODE")
    op.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
    op.execute("SELECT estadisticas_tomar_filas(pg_snapshot_xmax(pg_current_snapshot()))")
    op.execute("SELECT estadisticas_plegar_deltas()")
    for vista in PG_VISTAS:
        op.execute(f"DROP VIEW {vista}")
    for name in MASIVOS:
        op.execute(_masivo(_definicion(name), upgrade=False))
    op.execute("DROP TRIGGER estadisticas_pedidos_alta_tal_vez_plegar ON pedidos")
    esquema = _esquema()
    (pedidos,) = [sql for sql in m0011._functions(m0011.TICK) if "pedidos_fila()" in sql]
    op.execute(pedidos)
    op.execute(m0015.PG_DETALLES_FILA)
    m0011._comment(f"for one row in {EVERY} on average (a random draw)")
    op.execute(
        "COMMENT ON FUNCTION estadisticas_detalles_fila() IS 'Inserts the "
        "estadisticas_productos_vendidos deltas of a changed line of a sale, reading the "
        "pedido FOR SHARE unless this transaction wrote it; for one row in "
        f"{EVERY} on average it may fold (estadisticas_tal_vez_plegar). Not called "
        "in bulk mode (estadisticas.masivo).'"
    )
    for stem in ("estadisticas_pedidos", "estadisticas_detalles"):
        op.execute(f"ALTER FUNCTION {stem}_fila() SET search_path = {esquema}, pg_temp")
    for tabla, stem, cols in (
        ("pedidos", "estadisticas_pedidos", m0007.PG_PEDIDOS_COLS),
        ("detalles_pedido", "estadisticas_detalles", m0007.PG_DETALLES_COLS),
    ):
        _update_trigger(tabla, stem, cols)
        op.execute(
            f"CREATE TRIGGER {stem}_ins AFTER INSERT ON {tabla} FOR EACH ROW "
            f"WHEN ({m0009.EN_FILAS}) EXECUTE FUNCTION {stem}_fila()"
        )
        op.execute(
            f"CREATE TRIGGER {stem}_masivo_ins AFTER INSERT ON {tabla} "
            f"{m0007._pg_referencing('INSERT')} FOR EACH STATEMENT "
            f"WHEN ({m0009.EN_BLOQUE}) EXECUTE FUNCTION {stem}_masivo_ins()"
        )
    for firma in NUEVAS:
        op.execute(f"DROP FUNCTION {firma}")
    op.execute("ALTER FUNCTION estadisticas_plegar_deltas() RENAME TO estadisticas_plegar")
    op.execute("DROP TABLE estadisticas_horizonte")
    for tabla in TABLAS:
        op.execute(f"ALTER TABLE {tabla} DROP COLUMN alta_xact")
