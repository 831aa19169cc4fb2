"""The statistics functions find their tables whatever the session's search_path; bulk
lines read their pedidos after the pedidos' writers.

Found by a DBA's probe:

- The trigger functions name their tables without a schema, so a session whose
  search_path left the app's schema out could not write a pedido ("relation
  estadisticas_pedidos_delta does not exist"), and neither could a data-only
  restore (`pg_dump -a | psql`: the dump sets `search_path = ''`). Every function
  of the app's schema now carries `SET search_path = <that schema>, pg_temp`
  (PostgreSQL's advice for functions that others' sessions run). A later migration
  that CREATE OR REPLACEs one of them must say it again: the clause is part of the
  definition (tests/test_migrations.py checks every function has it).
- Bulk mode (`SET LOCAL estadisticas.masivo = 'on'`) still had the race 0015 closed
  for row mode: a bulk INSERT of a line into a pendiente pedido while another session
  confirmed that pedido was never counted, and a bulk DELETE of a line while the
  pedido was cancelled was subtracted twice. The bulk statement functions of
  detalles_pedido now first lock the statement's pedidos FOR SHARE (those this
  transaction did not write itself, in id order; before the statement takes the
  fold's lock), then read their estados in a later statement: after the pedidos'
  writers committed. As in row mode since 0015, the role writing the lines then
  needs UPDATE on pedidos (PostgreSQL's rule for FOR SHARE), and a REPEATABLE READ
  loader meets a serialization failure where the pedido changed under it. Two bulk
  transactions can now deadlock (one holds the fold's lock from an earlier
  statement and waits for a pedido the other is updating, which waits for the
  fold's lock): PostgreSQL aborts one, to be retried, where before both committed
  and the line was miscounted.

Revision ID: 0016_funciones_con_su_esquema
Revises: 0015_lineas_tras_su_pedido
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0016_funciones_con_su_esquema"
down_revision = "0015_lineas_tras_su_pedido"
branch_labels = None
depends_on = None


def _load(name: str):
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"m_{name}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


m0009 = _load("0009_deltas_por_fila")
LOCK = m0009.LOCK

# The functions of the app's schema that the migrations made: not an extension's
# (pg_stat_statements installed there by a superuser would stop the upgrade, and
# an extension's functions are its own business).
FUNCIONES = """
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1"""

# The transition tables of each bulk function of detalles_pedido.
MASIVO = {
    "estadisticas_detalles_masivo_ins": ("nuevos",),
    "estadisticas_detalles_masivo_upd": ("nuevos", "viejos"),
    "estadisticas_detalles_masivo_del": ("viejos",),
}
FOLD_LOCK = f"PERFORM pg_advisory_xact_lock({LOCK});"


def _bloquear_pedidos(tablas: tuple[str, ...]) -> str:
    """Lock the pedidos of the statement's lines FOR SHARE, but this transaction's own."""
    lineas = " UNION ".join(f"SELECT pedido_id FROM {t}" for t in tablas)
    return f"""-- The lines' pedidos read after whoever is changing them (0016; 0015 for rows).
PERFORM 1 FROM pedidos p
WHERE p.id IN ({lineas}) AND p.xmin <> pg_current_xact_id()::xid
ORDER BY p.id FOR SHARE OF p;
"""


def _definicion(name: str) -> str:
    return op.get_bind().exec_driver_sql(f"SELECT pg_get_functiondef('{name}'::regproc)").scalar()


def _funciones() -> list[str]:
    return list(op.get_bind().exec_driver_sql(FUNCIONES).scalars())


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no search_path and runs one writer at a time
    for name, tablas in MASIVO.items():
        sql = _definicion(name)
        assert sql.count(FOLD_LOCK) == 1, f"{name} no longer starts with the fold's lock"
        op.execute(sql.replace(FOLD_LOCK, _bloquear_pedidos(tablas) + FOLD_LOCK))
    for function in _funciones():
        op.execute(f"ALTER FUNCTION {function} SET search_path = {_esquema()}, pg_temp")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in _funciones():
        op.execute(f"ALTER FUNCTION {function} RESET search_path")
    for name, tablas in MASIVO.items():
        sql = _definicion(name)
        op.execute(sql.replace(_bloquear_pedidos(tablas), ""))


def _esquema() -> str:
    """The app's schema, quoted as an identifier."""
    return op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar()
