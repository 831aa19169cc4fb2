"""seed-demo time and a statistics MISS with this tree's code, a database at --base beside head.

    .venv/bin/python bench/esquemas.py [--base 0008_un_delta_por_pedido] [--pedidos 100000] \
        [--orders 2000] [--rounds 4] [--reps 10]

A migration that changes only the triggers must keep bulk loads and reads as they
were. One private PostgreSQL and Redis; per round, for `base` and `head` in turn
(order reversed every other round): a fresh database migrated to that revision,
timed `seed-demo --pedidos N --usuarios N/10 --productos 200 --seed 42` (bulk mode),
the delta rows it left. Then, on one database of each: an admin, `--orders`
pedido.sql orders from one connection (so each holds the unfolded deltas of a
steady state), and `--reps` MISSes of ventas, usuarios and reporte per round
measured by bench/historia.py's worker (this tree's code, in a subprocess),
databases interleaved. Medians, and head / base.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

import flask_migrate
import historia  # bench/historia.py, beside this file
import psycopg
from coste_disparadores import orders
from estadisticas import bench_app, servers
from sqlalchemy import text

from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario

BOUNDS = (
    "SELECT (SELECT min(id) FROM usuarios), (SELECT max(id) FROM usuarios), "
    "(SELECT min(id) FROM productos), (SELECT max(id) FROM productos)"
)
DELTAS = (
    "SELECT (SELECT count(*) FROM estadisticas_pedidos_delta) "
    "+ (SELECT count(*) FROM estadisticas_productos_vendidos_delta)"
)


def conninfo(admin: Any, name: str) -> str:
    return admin.set(database=name, drivername="postgresql").render_as_string(hide_password=False)


def seed_seconds(
    admin: Any, redis_url: str, revision: str, pedidos: int, name: str
) -> tuple[float, int, dict[str, int]]:
    """(seconds of seed-demo alone, delta rows left, id bounds) in a fresh database `name`."""
    with psycopg.connect(conninfo(admin, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    app = bench_app(url, redis_url, "/tmp", "UTC")  # noqa: S108
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"], revision=revision)
    args = ["seed-demo", "--pedidos", str(pedidos), "--usuarios", str(pedidos // 10)]
    started = time.perf_counter()
    result = app.test_cli_runner().invoke(args=[*args, "--productos", "200", "--seed", "42"])
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"seed-demo failed: {result.output}\n{result.exception!r}")
    with app.app_context():
        admin_user = Usuario(username="bench-admin", email="bench@x.test", rol="admin")
        admin_user.set_password("bench-password")
        db.session.add(admin_user)
        db.session.commit()
        left = db.session.scalar(text(DELTAS))
        bounds = db.session.execute(text(BOUNDS)).one()
        db.session.remove()
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        db.engine.dispose()
    return seconds, left, dict(zip(("umin", "umax", "pmin", "pmax"), bounds, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="0008_un_delta_por_pedido")
    parser.add_argument("--pedidos", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    revisions = {"base": args.base, "head": "head"}
    seeds: dict[str, list[float]] = {s: [] for s in revisions}
    misses: dict[str, dict[str, list[float]]] = {s: {} for s in revisions}
    with servers() as (admin, redis_url):
        bounds = {}
        for r in range(args.rounds):
            for schema in revisions if r % 2 == 0 else reversed(list(revisions)):
                name = f"bench_esquema_{schema}"
                seconds, left, bounds[schema] = seed_seconds(
                    admin, redis_url, revisions[schema], args.pedidos, name
                )
                seeds[schema].append(seconds)
                print(
                    f"  seed round {r} {schema}: {seconds:.1f} s, {left} delta rows left; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        for schema in revisions:
            with psycopg.connect(conninfo(admin, f"bench_esquema_{schema}"), autocommit=True) as c:
                orders(c, args.orders, bounds[schema], random.Random(7))
                print(f"  {schema}: {c.execute(DELTAS).fetchone()[0]} unfolded delta rows")
        urls = {
            s: admin.set(database=f"bench_esquema_{s}").render_as_string(hide_password=False)
            for s in revisions
        }
        for r in range(args.rounds):
            for schema in revisions if r % 2 == 0 else reversed(list(revisions)):
                got = historia._in_subprocess(historia.PROJECT, urls[schema], redis_url, args.reps)
                for endpoint, times in got.items():
                    misses[schema].setdefault(endpoint, []).extend(times)
            print(f"  MISS round {r}; load {os.getloadavg()[0]:.1f}", flush=True)
        with psycopg.connect(conninfo(admin, "postgres"), autocommit=True) as conn:
            for schema in revisions:
                conn.execute(f'DROP DATABASE "bench_esquema_{schema}" WITH (FORCE)')
    report(revisions, seeds, misses)


def report(revisions: dict[str, str], seeds: dict, misses: dict) -> None:
    base, head = revisions
    print(f"\nbase = {revisions[base]}, head = {revisions[head]}")
    print("\n| what | base | head | head / base |\n|---|---:|---:|---:|")
    b, h = statistics.median(seeds[base]), statistics.median(seeds[head])
    print(f"| seed-demo, s | {b:.1f} | {h:.1f} | {h / b:.2f} |")
    for endpoint in historia.ENDPOINTS:
        b = statistics.median(misses[base][endpoint]) * 1000
        h = statistics.median(misses[head][endpoint]) * 1000
        print(f"| MISS {endpoint}, ms | {b:.1f} | {h:.1f} | {h / b:.2f} |")


if __name__ == "__main__":
    main()
