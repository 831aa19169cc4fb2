"""A line's statistics trigger reads its pedido's estado after the pedido's writers;
TRUNCATE and the fold wait for one another.

Found by a DBA's probe with two psql sessions in READ COMMITTED (raw SQL must stay
exact): one inserted a line into pedido 194 and kept its transaction open, the other
set that pedido's estado to confirmado. Neither waited for the other, so the line's
trigger read the old estado (not a sale: no delta) and the pedido's trigger read the
lines without the uncommitted one (no delta either): the sale's 3 units were never
counted. Deleting a line while another session cancelled its pedido subtracted it
twice the same way. The foreign key's check takes FOR KEY SHARE on the pedido, which
an estado UPDATE does not wait for.

- estadisticas_detalles_fila() now reads the pedido's estado under FOR SHARE unless
  the pedido row is this transaction's own (it inserted or last updated it: nobody
  else can change it before COMMIT). Whichever of the two writers comes second waits
  for the first to commit and then sees its work: the line's trigger the new estado,
  the pedido's trigger the committed lines. An order written through the API inserts
  its pedido and lines in one transaction, so it takes no extra lock; the delta is
  now an INSERT ... VALUES after that one read instead of an INSERT ... SELECT.
- TRUNCATE of pedidos, detalles_pedido or usuarios first waits for a running fold
  (a BEFORE TRUNCATE trigger takes the fold's advisory lock): the AFTER TRUNCATE
  functions (0007/0008) empty the rollups, and a fold committing after their DELETE's
  snapshot left rows no raw row backs. `estadisticas-rebuild` takes the same lock.

Not covered (documented in README): one statement that writes both a pedido and its
lines (a writable CTE) fires both row triggers at its end, each seeing the other
table as the statement left it; estadisticas-rebuild repairs what that counts twice.

Revision ID: 0015_lineas_tras_su_pedido
Revises: 0014_imagen_url_sin_otro_sitio
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015_lineas_tras_su_pedido"
down_revision = "0014_imagen_url_sin_otro_sitio"
branch_labels = None
depends_on = None


def _load(name: str):
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"m_{name}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


m0009 = _load("0009_deltas_por_fila")
m0011 = _load("0011_tick_sin_secuencia")
VENTA, LOCK = m0009.VENTA, m0009.LOCK
SOURCES = ("pedidos", "detalles_pedido", "usuarios")


def _linea(r: str, s: str) -> str:
    """Line `r`'s productos delta (s = 1 adds, -1 removes) when its pedido is a sale,
    the pedido read after whoever is changing it."""
    return f"""
        SELECT p.estado, p.xmin = pg_current_xact_id()::xid INTO estado, propio
        FROM pedidos p WHERE p.id = {r}.pedido_id;
        IF NOT propio THEN  -- another transaction's pedido: read it after its writer
            SELECT p.estado INTO estado FROM pedidos p WHERE p.id = {r}.pedido_id FOR SHARE;
        END IF;
        IF estado IN {VENTA} THEN
            INSERT INTO estadisticas_productos_vendidos_delta
                (producto_id, cantidad, ingresos_centimos)
            VALUES ({r}.producto_id, {s} * {r}.cantidad, {s} * ({r}.subtotal * 100)::bigint);
        END IF;"""


PG_DETALLES_FILA = f"""
CREATE OR REPLACE FUNCTION estadisticas_detalles_fila() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    estado text;
    propio boolean;
BEGIN
    IF TG_OP <> 'INSERT' THEN  -- the old line leaves the sums
        {_linea("OLD", "-1")}
    END IF;
    IF TG_OP <> 'DELETE' THEN  -- the new line enters them
        {_linea("NEW", "1")}
    END IF;
    {m0011.TICK}
    RETURN NULL;
END;
$$"""

PG_ESPERAR_PLEGADO = f"""
CREATE FUNCTION estadisticas_esperar_plegado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK});
    RETURN NULL;
END;
$$"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs one writer at a time and has no fold
    op.execute(PG_DETALLES_FILA)
    op.execute(
        "COMMENT ON FUNCTION estadisticas_detalles_fila() IS 'Inserts the "
        "estadisticas_productos_vendidos deltas of a changed line of a sale, reading the "
        "pedido FOR SHARE unless this transaction wrote it; for one row in "
        f"{m0009.EVERY} on average it may fold (estadisticas_tal_vez_plegar). Not called "
        "in bulk mode (estadisticas.masivo).'"
    )
    op.execute(PG_ESPERAR_PLEGADO)
    op.execute(
        "COMMENT ON FUNCTION estadisticas_esperar_plegado() IS 'Before TRUNCATE of a "
        "statistics source: waits for a running fold (its advisory lock), so the AFTER "
        "TRUNCATE function empties the rollups after it.'"
    )
    for table in SOURCES:
        op.execute(
            f"CREATE TRIGGER estadisticas_{table}_antes_de_vaciar BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION estadisticas_esperar_plegado()"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in SOURCES:
        op.execute(f"DROP TRIGGER estadisticas_{table}_antes_de_vaciar ON {table}")
    op.execute("DROP FUNCTION estadisticas_esperar_plegado()")
    (detalles,) = [sql for sql in m0011._functions(m0011.TICK) if "detalles_fila()" in sql]
    op.execute(detalles)
    m0011._comment(f"for one row in {m0009.EVERY} on average (a random draw)")
