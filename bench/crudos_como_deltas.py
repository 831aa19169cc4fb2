"""Issue 20's next lever, measured as a sketch: an order's own rows as its deltas.

    .venv/bin/python bench/crudos_como_deltas.py [--seconds 8] [--rounds 3] \
        [--clients 1,16,64] [--pedidos 20000]

Not the schema: bench/crudos_como_deltas.sql (read it first) applied to a
throwaway copy of a head database. At head every order runs two row triggers
(plpgsql, two delta INSERTs); in the sketch an order runs none: each row carries
the inserting transaction's id (a column default, indexed) and a fold moves the
rows of finished transactions into the delta tables. The reads, the UPDATE and
DELETE paths, rebuild and the rest a real migration needs are not in the sketch
(docs/issue-20-filas-como-deltas.md lists them), so this measures what an order costs the
server, nothing else.

One private PostgreSQL (fsync off, as filas_calientes), one database seeded as
filas_calientes seeds it (`head`) and its copy with the sketch (`boceto`).
bench/pgbench/pedido.sql at each client count for `--seconds` per cell, with and
without the rollup machinery, cells interleaved (order reversed every other round),
median per cell:

- head: with = as migrated; without = `DISABLE TRIGGER USER` (filas_calientes);
- boceto: with = the sketch; without = its triggers disabled AND its column's
  index dropped and default a constant, so "without" is the plain schema.

Per cell: tps, the server's CPU per order, the share of sessions waiting on a Lock.
After the rounds, one more `boceto` cell at the top client count, then a fold: the
pedidos it added must all be in the rollup once (printed, and the exit status is
1 if not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import filas_calientes  # bench/filas_calientes.py, beside this file
import psycopg
from estadisticas import bench_app, database, servers

from electro_isla.extensions import db

SKETCH = Path(__file__).with_name("crudos_como_deltas.sql")
SCHEMAS = ("head", "boceto")
INDEXES = {"pedidos": "pedidos_alta_xact", "detalles_pedido": "detalles_pedido_alta_xact"}
# The pedidos, and those the rollup counts: its folded rows and its unfolded deltas.
CONTADOS = (
    "SELECT (SELECT count(*) FROM pedidos), "
    "(SELECT coalesce(sum(pedidos), 0) FROM estadisticas_pedidos_dia) "
    "+ (SELECT coalesce(sum(pedidos), 0) FROM estadisticas_pedidos_delta)"
)


def machinery(conninfo: str, schema: str, enabled: bool) -> None:
    """Switch the rollup machinery of `schema` on or off (see the module docstring)."""
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table, index in INDEXES.items():
            conn.execute(f"ALTER TABLE {table} {verb} TRIGGER USER")
            if schema != "boceto":
                continue
            if enabled:
                conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (alta_xact)")
                conn.execute(
                    f"ALTER TABLE {table} ALTER COLUMN alta_xact SET DEFAULT pg_current_xact_id()"
                )
            else:
                conn.execute(f"DROP INDEX IF EXISTS {index}")
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN alta_xact SET DEFAULT '0'")


def fold(conninfo: str) -> None:
    """Every finished transaction's rows into the rollups (what the tick does now and then)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT estadisticas_traer_crudos(), estadisticas_plegar()")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--pedidos", type=int, default=20_000)
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    cells: dict[tuple[str, int, bool], list[tuple[float, float, float]]] = {}
    with (
        servers(durable=False) as (admin, redis_url),
        tempfile.TemporaryDirectory() as logdir,
        database(admin, "bench_head", False) as (url, _),
    ):
        app = bench_app(url, redis_url, logdir, "UTC")
        bounds = filas_calientes.seed(app, "head", args.pedidos)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

        def conninfo(name: str) -> str:
            target = admin.set(database=name, drivername="postgresql")
            return target.render_as_string(hide_password=False)

        dbs = {"head": "bench_head", "boceto": "bench_boceto"}
        with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_boceto")
            conn.execute("CREATE DATABASE bench_boceto TEMPLATE bench_head")
        try:
            with psycopg.connect(conninfo("bench_boceto"), autocommit=True) as conn:
                conn.execute(SKETCH.read_text())
                conn.execute("VACUUM ANALYZE")
            cpu = filas_calientes.ServerCpu(conninfo("bench_head"))
            for r in range(args.rounds):
                for schema in SCHEMAS:
                    for n in clients:
                        for enabled in (True, False) if r % 2 == 0 else (False, True):
                            machinery(conninfo(dbs[schema]), schema, enabled)
                            before = cpu.seconds()
                            with filas_calientes.LockSampler(conninfo(dbs[schema])) as sampler:
                                tps, orders = filas_calientes.pgbench(
                                    admin, dbs[schema], n, args.seconds, bounds
                                )
                            time.sleep(0.3)  # the postmaster reaps pgbench's backends
                            per_order = (cpu.seconds() - before) / orders * 1e6
                            locks = sampler.share()[0]
                            cells.setdefault((schema, n, enabled), []).append(
                                (tps, per_order, locks)
                            )
                            print(
                                f"  round {r} {schema:<6} {n:>2} clients "
                                f"{'with' if enabled else 'without':<7} {tps:8.1f} tps  "
                                f"server CPU {per_order:4.0f} µs/order  waiting on Lock "
                                f"{locks:5.1%}  load {os.getloadavg()[0]:.1f}",
                                flush=True,
                            )
            exact = check(conninfo("bench_boceto"), admin, max(clients), args.seconds, bounds)
        finally:
            with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS bench_boceto")
    report(cells, clients)
    raise SystemExit(0 if exact else 1)


def check(conninfo: str, admin, clients: int, seconds: int, bounds: dict[str, int]) -> bool:
    """One more sketch cell between two full folds: every pedido it added is counted once."""
    machinery(conninfo, "boceto", True)
    fold(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        before = conn.execute(CONTADOS).fetchone()
    filas_calientes.pgbench(admin, "bench_boceto", clients, seconds, bounds)
    fold(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        after = conn.execute(CONTADOS).fetchone()
    added, counted = after[0] - before[0], after[1] - before[1]
    print(
        f"\ncheck: {clients} clients added {added} pedidos to the sketch; its fold counted "
        f"{counted} ({'exact' if added == counted else 'NOT EXACT'})"
    )
    return added == counted


def report(cells: dict[tuple[str, int, bool], list[tuple[float, float, float]]], clients) -> None:
    def med(schema: str, n: int, enabled: bool, i: int) -> float:
        return statistics.median(c[i] for c in cells[(schema, n, enabled)])

    print(
        "\n| schema | clients | with, tps | without, tps | with / without "
        "| server CPU µs/order, with / without | waiting on Lock, with |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for schema in SCHEMAS:
        for n in clients:
            w, wo = med(schema, n, True, 0), med(schema, n, False, 0)
            print(
                f"| {schema} | {n} | {w:.0f} | {wo:.0f} | {w / wo:.2f} "
                f"| {med(schema, n, True, 1):.0f} / {med(schema, n, False, 1):.0f} "
                f"| {med(schema, n, True, 2):.0%} |"
            )
    top = max(clients)
    mid = sorted(clients)[-2] if len(clients) > 1 else top
    for schema in SCHEMAS:
        ratio = med(schema, top, True, 0) / med(schema, top, False, 0)
        rising = med(schema, top, True, 0) / med(schema, mid, True, 0)
        alone = med(schema, top, False, 0) / med(schema, mid, False, 0)
        print(
            f"{schema}: with / without at {top} clients {ratio:.2f} (target >= "
            f"{filas_calientes.RATIO_TARGET}); with tps {top} / {mid} clients {rising:.2f} "
            f"(without {alone:.2f})"
        )


if __name__ == "__main__":
    main()
