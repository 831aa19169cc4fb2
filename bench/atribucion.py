"""Where the statistics triggers' cost goes at 64 clients: the machinery, the bodies, the fold.

    .venv/bin/python bench/atribucion.py [--seconds 8] [--rounds 3] [--clients 64] \
        [--pedidos 20000]

bench/filas_calientes.py measures orders/s with the triggers beside without them;
this splits the gap. One private PostgreSQL (fsync off), one database at head
seeded as filas_calientes seeds it, bench/pgbench/pedido.sql at `--clients` for
`--seconds` per cell, and four variants of the same schema, cells interleaved
(order reversed every other round), median per variant:

- `sin`: `ALTER TABLE ... DISABLE TRIGGER USER` (filas_calientes' "without");
- `cuerpos_vacios`: the triggers fire, but their row functions return at once:
  what calling a trigger costs (WHEN, the after-trigger queue, plpgsql);
- `sin_plegar`: the triggers write their deltas, but no writer folds them
  (estadisticas_tal_vez_plegar does nothing; each cell's deltas are folded after
  it, so every cell starts alike);
- `con`: the schema as migrated (filas_calientes' "with").

Written for migrations 0009-0016, whose row triggers ran on every INSERT of an order.
Since 0017 an order's INSERTs run none of them (its rows are its deltas): at head
`cuerpos_vacios` and `sin_plegar` differ from `con` only in the fold; run it on a
database at 0016 to see what this split was made for.

Each variant's functions are swapped with CREATE OR REPLACE in the throwaway
database and put back after the cell. Per cell: tps, and the server's CPU per
order (every PostgreSQL process, filas_calientes.ServerCpu) when the server runs
on this machine.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import filas_calientes  # bench/filas_calientes.py, beside this file
import psycopg
from estadisticas import bench_app, database, servers

from electro_isla.extensions import db

VARIANTS = ("sin", "cuerpos_vacios", "sin_plegar", "con")
ROW_FUNCTIONS = ("estadisticas_pedidos_fila", "estadisticas_detalles_fila")
TAL_VEZ = "estadisticas_tal_vez_plegar"


def definitions(conn: psycopg.Connection, names: tuple[str, ...]) -> dict[str, str]:
    """CREATE OR REPLACE statements of functions `names`, as the database holds them."""
    return {
        name: conn.execute("SELECT pg_get_functiondef(%s::regproc)", (name,)).fetchone()[0]
        for name in names
    }


def empty(name: str, returns: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS {returns} LANGUAGE plpgsql "
        f"AS $$ BEGIN {'RETURN NULL;' if returns == 'trigger' else ''} END; $$"
    )


def apply(conn: psycopg.Connection, variant: str, saved: dict[str, str]) -> None:
    """Put the migrated functions back, then set `variant` up."""
    for sql in saved.values():
        conn.execute(sql)
    enabled = variant != "sin"
    for table in ("pedidos", "detalles_pedido"):
        conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
    if variant == "cuerpos_vacios":
        for name in ROW_FUNCTIONS:
            conn.execute(empty(name, "trigger"))
    elif variant == "sin_plegar":
        conn.execute(empty(TAL_VEZ, "void"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--pedidos", type=int, default=20_000)
    args = parser.parse_args()
    # variant -> [(tps, µs of server CPU per order or None, load)]
    cells: dict[str, list[tuple[float, float | None, float]]] = {v: [] for v in VARIANTS}
    with servers() as (admin, redis_url), database(admin, "bench_atribucion", False) as (url, _):
        app = bench_app(url, redis_url, "/tmp", "UTC")  # noqa: S108
        bounds = filas_calientes.seed(app, "head", args.pedidos)
        conninfo = admin.set(database="bench_atribucion", drivername="postgresql")
        conninfo = conninfo.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            saved = definitions(conn, (*ROW_FUNCTIONS, TAL_VEZ))
            server_cpu = filas_calientes.ServerCpu(conninfo)
            try:
                for r in range(args.rounds):
                    for variant in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
                        apply(conn, variant, saved)
                        before = server_cpu.seconds()
                        tps, orders = filas_calientes.pgbench(
                            admin, "bench_atribucion", args.clients, args.seconds, bounds
                        )
                        time.sleep(0.5)  # the cell's backends exit and are reaped
                        cpu = (server_cpu.seconds() - before) / orders * 1e6
                        cpu = None if math.isnan(cpu) else cpu  # a server on another host
                        load = os.getloadavg()[0]
                        cells[variant].append((tps, cpu, load))
                        conn.execute("SELECT estadisticas_plegar()")  # the next cell starts alike
                        print(
                            f"  round {r} {variant:<14} {tps:8.1f} tps"
                            + (f"  {cpu:5.0f} µs server CPU per order" if cpu is not None else "")
                            + f"  load {load:.1f}",
                            flush=True,
                        )
            finally:
                apply(conn, "con", saved)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    report(cells, args.clients)


def report(cells: dict[str, list[tuple[float, float | None, float]]], clients: int) -> None:
    sin = statistics.median(c[0] for c in cells["sin"])
    print(f"\n| variant ({clients} clients) | tps | ÷ sin | server CPU µs/order | load avg |")
    print("|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        tps = statistics.median(c[0] for c in cells[variant])
        cpus = [c[1] for c in cells[variant] if c[1] is not None]
        cpu = f"{statistics.median(cpus):.0f}" if cpus else "—"
        loads = [c[2] for c in cells[variant]]
        print(
            f"| {variant} | {tps:.0f} | {tps / sin:.2f} | {cpu} "
            f"| {min(loads):.1f}–{max(loads):.1f} |"
        )


if __name__ == "__main__":
    main()
