"""Backend CPU per order spent in the statistics triggers: an older schema beside head.

    .venv/bin/python bench/coste_disparadores.py [--orders 3000] [--rounds 4] [--pedidos 5000] \
        [--base 0007_rollups_sin_fila_caliente]

Throughput on this shared 2-core machine swings with the other sessions' load;
the CPU time the server backend itself spends per order (utime + stime of its
/proc/<pid>/stat, read before and after a batch) is steadier, and at 64 clients on
a CPU-bound server it is what sets the with / without ratio. One private
PostgreSQL, two databases seeded alike (`seed-demo --pedidos N`), one at
`--base` (a revision, default 0007_rollups_sin_fila_caliente) and one at head; the same order as
bench/pgbench/pedido.sql (a confirmado pedido + one line, one transaction, simple
protocol) is sent `--orders` times per cell from one connection per database,
triggers on and off (`ALTER TABLE ... ENABLE/DISABLE TRIGGER USER`), cells
interleaved and their order reversed every other round; the median per cell.
With the triggers on, pg_stat_user_functions (track_functions = all) gives each
trigger function's time per order (wall time inside the backend, folds included).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

import filas_calientes  # bench/filas_calientes.py, beside this file
import psycopg
from estadisticas import bench_app, database, servers

SCHEMAS = ("base", "head")
PEDIDO = (
    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, "
    "telefono, notas, created_at, updated_at) VALUES (%s, 'confirmado', %s, 10.50, "
    "'Calle 1', '555', '', now(), now()) RETURNING id"
)
LINEA = (
    "INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, "
    "precio_unitario, subtotal) VALUES (%s, %s, 'bench', 1, 10.50, 10.50)"
)
FUNCIONES = (
    "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions "
    "ORDER BY total_time DESC"
)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a local process (the server backend), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def orders(conn: psycopg.Connection, n: int, bounds: dict[str, int], rnd: random.Random) -> None:
    for _ in range(n):
        usuario = rnd.randint(bounds["umin"], bounds["umax"])
        producto = rnd.randint(bounds["pmin"], bounds["pmax"])
        metodo = rnd.choice(("efectivo", "tarjeta", "transferencia"))
        with conn.transaction():
            pedido = conn.execute(PEDIDO, (usuario, metodo), prepare=False).fetchone()[0]
            conn.execute(LINEA, (pedido, producto), prepare=False)


def flush_stats(conn: psycopg.Connection) -> None:
    """Publish this backend's pending function statistics (PostgreSQL 15 delays them)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")
    time.sleep(0.3)
    conn.execute("SELECT pg_stat_clear_snapshot()")


def functions_per_order(conn: psycopg.Connection, n: int) -> list[tuple[str, int, float, float]]:
    """(function, calls, total µs per order, self µs per order) since the last reset."""
    flush_stats(conn)
    return [
        (name, calls, total * 1000 / n, own * 1000 / n)
        for name, calls, total, own in conn.execute(FUNCIONES)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pedidos", type=int, default=5000)
    parser.add_argument("--base", default="0007_rollups_sin_fila_caliente")
    args = parser.parse_args()
    revisions = {"base": args.base, "head": "head"}
    print(f"# base = {args.base}")
    cpu: dict[tuple[str, bool], list[float]] = {}
    funcs: dict[str, list[list[tuple[str, int, float, float]]]] = {s: [] for s in SCHEMAS}
    with (
        servers() as (admin, redis_url),
        database(admin, "bench_coste_base", False) as (url_base, _),
        database(admin, "bench_coste_head", False) as (url_head, _),
    ):
        urls = {"base": url_base, "head": url_head}
        conninfo: dict[str, str] = {}
        conns: dict[str, Any] = {}
        bounds: dict[str, dict[str, int]] = {}
        for schema, revision in revisions.items():
            app = bench_app(urls[schema], redis_url, "/tmp", "UTC")  # noqa: S108
            bounds[schema] = filas_calientes.seed(app, revision, args.pedidos)
            conninfo[schema] = admin.set(
                database=f"bench_coste_{schema}", drivername="postgresql"
            ).render_as_string(hide_password=False)
            conns[schema] = psycopg.connect(conninfo[schema], autocommit=True)
            conns[schema].execute("SET track_functions = 'all'")
        pids = {s: c.execute("SELECT pg_backend_pid()").fetchone()[0] for s, c in conns.items()}
        rnd = random.Random(1)
        for schema in SCHEMAS:
            orders(conns[schema], 300, bounds[schema], rnd)  # warm the plans
        try:
            for r in range(args.rounds):
                cells = [(s, on) for s in SCHEMAS for on in (True, False)]
                for schema, enabled in cells if r % 2 == 0 else reversed(cells):
                    conn = conns[schema]
                    filas_calientes.triggers(conninfo[schema], enabled)
                    flush_stats(conn)
                    conn.execute("SELECT pg_stat_reset()")
                    before = cpu_seconds(pids[schema])
                    orders(conn, args.orders, bounds[schema], rnd)
                    per_order = (cpu_seconds(pids[schema]) - before) / args.orders * 1e6
                    cpu.setdefault((schema, enabled), []).append(per_order)
                    if enabled:
                        funcs[schema].append(functions_per_order(conn, args.orders))
                    print(
                        f"  round {r} {schema:<4} {'with' if enabled else 'without':<7} "
                        f"{per_order:6.0f} µs CPU per order  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        finally:
            for conn in conns.values():
                conn.close()
    report(cpu, funcs, args.orders)


def report(cpu: dict, funcs: dict, n: int) -> None:
    print("\n| schema | with triggers, µs CPU/order | without | triggers add | without / with |")
    print("|---|---:|---:|---:|---:|")
    for schema in SCHEMAS:
        w, wo = statistics.median(cpu[(schema, True)]), statistics.median(cpu[(schema, False)])
        print(f"| {schema} | {w:.0f} | {wo:.0f} | {w - wo:.0f} | {wo / w:.2f} |")
    print("\n| schema | function | calls per order | total µs/order | self µs/order |")
    print("|---|---|---:|---:|---:|")
    for schema, rounds in funcs.items():
        names = sorted({f[0] for fs in rounds for f in fs})
        for name in names:
            rows = [f for fs in rounds for f in fs if f[0] == name]
            calls = statistics.median(f[1] for f in rows)
            total = statistics.median(f[2] for f in rows)
            own = statistics.median(f[3] for f in rows)
            print(f"| {schema} | {name} | {calls / n:.3g} | {total:.0f} | {own:.0f} |")


if __name__ == "__main__":
    main()
