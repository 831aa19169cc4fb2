"""Statistics benchmark: MISS, HIT and raw-row cost of each endpoint at several data sizes.

    .venv/bin/python bench/estadisticas.py [--sizes 100000,1000000] [--reps 5] \
        [--timezone America/Havana] [--writes] [--seed-baseline]

Per size: a fresh PostgreSQL database migrated to head (rollups and their
triggers) and filled by `flask seed-demo` (then VACUUM ANALYZE, as autovacuum
would), a private Redis, an admin token. A MISS is a full request after the
entry was invalidated (auth on a warm profile, rollup SQL, caching, rendering);
a HIT is the same request served from the stored rendering; `raw` is the
raw-row computation (estadisticas/crudo.py, what the endpoints did before the
rollups) run in-process, without HTTP; `perfil` is a HIT of GET /api/perfil/.
Medians over the repetitions. Targets (issue 10): MISS at 1M <= 1.5x MISS at
100k; MISS at 1M <= 1/20 of raw at 1M; HIT requests/s >= 0.95x perfil's.

--writes: POST /api/pedidos/ p50 and 40-buyer throughput with and without the
rollup triggers (bench/escrituras.py). --seed-baseline: also seed the same
data into a database at 0001_initial (no rollups) and compare seed-demo times.

PostgreSQL: a private server (electro_isla_testing/servers.PostgresServer) unless
$BENCH_DATABASE_URL names one (databases bench_stats_<n> are created on it and
dropped, or kept and reused with --keep). Redis: a private server unless
$BENCH_REDIS_URL is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import escrituras  # bench/escrituras.py, beside this file
import flask_migrate
import psycopg
from sqlalchemy import event, make_url, text

from electro_isla import create_app
from electro_isla.auth.service import issue_access_token
from electro_isla.cache import cache_manager
from electro_isla.config import Config
from electro_isla.estadisticas import crudo
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.servers import PostgresServer, RedisServer

PROJECT = Path(__file__).resolve().parents[1]

ENDPOINTS = {
    "ventas": "estadisticas_ventas",
    "usuarios": "estadisticas_usuarios",
    "productos": "estadisticas_productos",
    "reporte": "reporte_general",
}
GROWTH_TARGET = 1.5
RAW_TARGET = 20.0
PERFIL_TARGET = 0.95


class BenchConfig(Config):
    SECRET_KEY = "bench-secret-key-that-is-long-enough-for-hs256"  # noqa: S105


def seed_args(pedidos: int) -> list[str]:
    return [
        "seed-demo",
        "--pedidos",
        str(pedidos),
        "--usuarios",
        str(max(60, pedidos // 10)),
        "--productos",
        str(max(80, pedidos // 200)),
        "--meses",
        "12",
        "--seed",
        "42",
    ]


@contextmanager
def servers(durable: bool = False) -> Iterator[tuple[Any, str]]:
    """(admin URL of a PostgreSQL server, Redis URL); private ones unless given.

    A private PostgreSQL skips fsync unless `durable` (PostgreSQL's defaults: each
    COMMIT waits for its WAL on disk, as in production)."""
    pg = redis_server = None
    given_pg = os.environ.get("BENCH_DATABASE_URL")
    given_redis = os.environ.get("BENCH_REDIS_URL")
    try:
        if given_pg:
            admin = make_url(given_pg).set(drivername="postgresql+psycopg")
        else:
            pg = PostgresServer(durable=durable)
            admin = make_url(pg.start())
        if given_redis:
            redis_url = given_redis
        else:
            redis_server = RedisServer().start()
            redis_url = redis_server.url
        yield admin, redis_url
    finally:
        if pg is not None:
            pg.cleanup()
        if redis_server is not None:
            redis_server.stop()


def _conninfo(url: Any) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def database(admin: Any, name: str, keep: bool) -> Iterator[tuple[str, bool]]:
    """(URL, already seeded?) of database `name`; dropped at the end unless `keep`."""
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not keep:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False), bool(exists)
    finally:
        if not keep:
            with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def statements(app) -> Iterator[list[tuple[float, str, Any]]]:
    """(seconds, SQL, parameters) of every statement run inside the block."""
    seen: list[tuple[float, str, Any]] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        started = conn.info["bench_started"].pop()
        seen.append((time.perf_counter() - started, statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(app, statement: str, parameters: Any) -> str:
    """EXPLAIN ANALYZE with the work_mem the statistics transaction sets for itself."""
    with app.app_context(), db.engine.begin() as conn:
        work_mem = app.config.get("ESTADISTICAS_WORK_MEM", "64MB")
        conn.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
        return "\n".join(r[0] for r in rows)


def raw_cost(app, endpoint: str, reps: int) -> float:
    """Median seconds of the raw-row computation of `endpoint` (SQL and Python, no HTTP)."""
    times = []
    for _ in range(reps):
        with app.app_context():
            ventana = meses()
            started = time.perf_counter()
            if endpoint == "productos":
                crudo.productos()
            else:
                getattr(crudo, endpoint)(ventana)
            times.append(time.perf_counter() - started)
            db.session.remove()
    return statistics.median(times)


def perfil_hit(app, headers: dict[str, str], reps: int) -> float:
    client = app.test_client()
    assert client.get("/api/perfil/", headers=headers).status_code == 200
    times = []
    for _ in range(reps * 10):
        started = time.perf_counter()
        response = client.get("/api/perfil/", headers=headers)
        times.append(time.perf_counter() - started)
        assert response.headers["X-Cache"] == "HIT", response.headers
    return statistics.median(times)


def measure(app, headers: dict[str, str], endpoint: str, name: str, reps: int) -> dict[str, Any]:
    client = app.test_client()
    url = f"/api/admin/estadisticas/{endpoint}/"
    assert client.get(url, headers=headers).status_code == 200  # warm connections, profile
    misses, hits = [], []
    # Interleaved (one MISS, then ten HITs, per round) so that both see the same
    # machine load; a shared 2-core machine drifts a lot between minutes.
    for _ in range(reps):
        with app.app_context():
            cache_manager.invalidate(names=[name])
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        misses.append(time.perf_counter() - started)
        assert response.headers["X-Cache"] == "MISS", response.headers
        for _ in range(10):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            hits.append(time.perf_counter() - started)
            assert response.headers["X-Cache"] == "HIT", response.headers
    with app.app_context():
        cache_manager.invalidate(names=[name])
    with statements(app) as seen:
        client.get(url, headers=headers)
    slowest = max(seen, key=lambda s: s[0])
    return {
        "miss": statistics.median(misses),
        "hit": statistics.median(hits),
        "raw": raw_cost(app, endpoint, reps),
        "queries": len(seen),
        "slowest": slowest,
        "sql_seconds": sum(s[0] for s in seen),
    }


def bench_app(url: str, redis_url: str, logdir: str, tz: str) -> Any:
    return create_app(
        BenchConfig,
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "LOG_DIR": logdir,
            # A loaded machine must not trip the breaker into BYPASS mid-measurement.
            "REDIS_SOCKET_TIMEOUT": 5.0,
            "TIMEZONE": tz,
        },
    )


def seed_baseline(admin: Any, redis_url: str, pedidos: int, logdir: str, tz: str) -> float:
    """seed-demo seconds into a database at 0001_initial: no rollups, no triggers."""
    with database(admin, f"bench_stats_{pedidos}_base", False) as (url, _):
        app = bench_app(url, redis_url, logdir, tz)
        with app.app_context():
            flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"], revision="0001_initial")
        started = time.perf_counter()
        result = app.test_cli_runner().invoke(args=seed_args(pedidos))
        if result.exit_code != 0:
            raise SystemExit(f"seed-demo failed: {result.output}\n{result.exception!r}")
        seconds = time.perf_counter() - started
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return seconds


def run_size(
    admin: Any,
    redis_url: str,
    pedidos: int,
    reps: int,
    logdir: str,
    keep: bool,
    options: argparse.Namespace,
) -> dict[str, Any]:
    baseline = 0.0
    if options.seed_baseline:
        baseline = seed_baseline(admin, redis_url, pedidos, logdir, options.timezone)
        print(f"# {pedidos:,} pedidos seeded without rollups in {baseline:.1f} s", flush=True)
    with database(admin, f"bench_stats_{pedidos}", keep) as (url, seeded_before):
        app = bench_app(url, redis_url, logdir, options.timezone)
        seeded = 0.0
        if not seeded_before:
            with app.app_context():
                flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])  # with triggers
            started = time.perf_counter()
            result = app.test_cli_runner().invoke(args=seed_args(pedidos))
            if result.exit_code != 0:
                raise SystemExit(f"seed-demo failed: {result.output}\n{result.exception!r}")
            seeded = time.perf_counter() - started
            with app.app_context():
                with db.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                        text("VACUUM ANALYZE")
                    )
                admin_user = Usuario(username="bench-admin", email="bench@x.test", rol="admin")
                admin_user.set_password("bench-password")
                db.session.add(admin_user)
                db.session.commit()
        with app.app_context():
            admin_user = db.session.scalars(
                db.select(Usuario).where(Usuario.username == "bench-admin")
            ).one()
            headers = {"Authorization": f"Bearer {issue_access_token(admin_user)}"}
            counts = {
                t: db.session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
                for t in ("usuarios", "productos", "pedidos", "detalles_pedido")
            }
        print(
            f"# {pedidos:,} pedidos "
            + (f"seeded in {seeded:.1f} s: " if seeded else "(kept from an earlier run): ")
            + ", ".join(f"{t} {n:,}" for t, n in counts.items()),
            flush=True,
        )
        figures = {}
        for endpoint, name in ENDPOINTS.items():
            figures[endpoint] = measure(app, headers, endpoint, name, reps)
            f = figures[endpoint]
            print(
                f"  {endpoint:<10} miss {f['miss'] * 1000:9.2f} ms   hit {f['hit'] * 1000:7.3f} ms"
                f"   raw {f['raw'] * 1000:9.1f} ms"
                f"   {f['queries']} queries, slowest {f['slowest'][0] * 1000:.1f} ms",
                flush=True,
            )
        perfil = perfil_hit(app, headers, reps)
        print(f"  perfil     hit {perfil * 1000:7.3f} ms", flush=True)
        explains = {endpoint: explain(app, *f["slowest"][1:]) for endpoint, f in figures.items()}
        writes = None
        if options.writes:
            writes = escrituras.measure(app)
            print(
                f"  POST /api/pedidos/ p50 {writes['p50_with'] * 1000:.2f} ms with rollups, "
                f"{writes['p50_without'] * 1000:.2f} ms without; 40 buyers "
                f"{writes['rate_with']:.1f} vs {writes['rate_without']:.1f} orders/s; "
                f"statuses {writes['statuses']}",
                flush=True,
            )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return {
            "figures": figures,
            "explains": explains,
            "seeded": seeded,
            "baseline": baseline,
            "counts": counts,
            "perfil": perfil,
            "writes": writes,
        }


def interleaved(
    admin: Any, redis_url: str, sizes: list[int], reps: int, logdir: str, tz: str
) -> dict[int, dict[str, dict[str, float]]]:
    """MISS and raw cost per size, measured round-robin over the kept databases.

    One MISS of each endpoint at each size per round, so every size sees the same
    machine load (a shared 2-core machine drifts by 2x between minutes).
    """
    apps, headers = {}, {}
    for n in sizes:
        url = admin.set(database=f"bench_stats_{n}").render_as_string(hide_password=False)
        apps[n] = bench_app(url, redis_url, logdir, tz)
        with apps[n].app_context():
            admin_user = db.session.scalars(
                db.select(Usuario).where(Usuario.username == "bench-admin")
            ).one()
            headers[n] = {"Authorization": f"Bearer {issue_access_token(admin_user)}"}
            db.session.remove()
    seen: dict[int, dict[str, dict[str, list[float]]]] = {
        n: {e: {"miss": [], "raw": [], "hit": []} for e in ENDPOINTS} for n in sizes
    }
    clients = {n: apps[n].test_client() for n in sizes}
    perfil: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(reps):
        for n in sizes:
            for endpoint, name in ENDPOINTS.items():
                url = f"/api/admin/estadisticas/{endpoint}/"
                clients[n].get(url, headers=headers[n])
                with apps[n].app_context():
                    cache_manager.invalidate(names=[name])
                started = time.perf_counter()
                response = clients[n].get(url, headers=headers[n])
                seen[n][endpoint]["miss"].append(time.perf_counter() - started)
                assert response.headers["X-Cache"] == "MISS"
                for _hit in range(10):
                    started = time.perf_counter()
                    clients[n].get(url, headers=headers[n])
                    seen[n][endpoint]["hit"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    clients[n].get("/api/perfil/", headers=headers[n])
                    perfil[n].append(time.perf_counter() - started)
                seen[n][endpoint]["raw"].append(raw_cost(apps[n], endpoint, 1))
    out = {
        n: {e: {k: statistics.median(v) for k, v in f.items()} for e, f in seen[n].items()}
        for n in sizes
    }
    for n in sizes:
        out[n]["perfil"] = {"hit": statistics.median(perfil[n])}
        with apps[n].app_context():
            db.session.remove()
            db.engine.dispose()
    return out


def report_interleaved(res: dict[int, dict[str, dict[str, float]]], sizes: list[int]) -> None:
    big, mid = max(sizes), min(sizes)
    print("\n## Interleaved (round-robin over the sizes), TIMEZONE as given\n")
    print(
        f"| endpoint | miss @{mid:,} | miss @{big:,} | ratio (<= {GROWTH_TARGET}) "
        f"| raw @{big:,} | raw / miss (>= {RAW_TARGET:.0f}) "
        f"| hit @{big:,} | perfil hit @{big:,} | hit req/s / perfil (>= {PERFIL_TARGET}) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for e in ENDPOINTS:
        a, b = res[mid][e], res[big][e]
        growth, speed = b["miss"] / a["miss"], b["raw"] / b["miss"]
        hit_ratio = res[big]["perfil"]["hit"] / b["hit"]
        print(
            f"| {e} | {a['miss'] * 1000:.2f} ms | {b['miss'] * 1000:.2f} ms | {growth:.2f} "
            f"| {b['raw'] * 1000:.1f} ms | {speed:.1f} | {b['hit'] * 1000:.3f} ms "
            f"| {res[big]['perfil']['hit'] * 1000:.3f} ms | {hit_ratio:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--timezone", default="America/Havana")
    parser.add_argument("--writes", action="store_true")
    parser.add_argument("--seed-baseline", action="store_true")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="with --keep: then measure misses round-robin over the sizes",
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--explain", choices=("failing", "all", "none"), default="failing")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the seeded databases (with $BENCH_DATABASE_URL) and reuse them next time",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {}
    with servers() as (admin, redis_url), tempfile.TemporaryDirectory() as logdir:
        for n in sizes:
            results[n] = run_size(admin, redis_url, n, args.reps, logdir, args.keep, args)
        mixed = None
        if args.interleave and args.keep:
            mixed = interleaved(admin, redis_url, sizes, args.reps, logdir, args.timezone)

    report(results, sizes)
    if mixed:
        report_interleaved(mixed, sizes)
    failing: set[tuple[int, str]] = set()
    big, mid = (
        (1_000_000, 100_000) if {1_000_000, 100_000} <= set(sizes) else (max(sizes), min(sizes))
    )
    for endpoint in ENDPOINTS:
        f_big, f_mid = results[big]["figures"][endpoint], results[mid]["figures"][endpoint]
        if (
            f_big["miss"] / f_mid["miss"] > GROWTH_TARGET
            or f_big["raw"] / f_big["miss"] < RAW_TARGET
        ):
            failing.add((big, endpoint))
    if args.explain != "none":
        shown = {(n, e) for n in sizes for e in ENDPOINTS} if args.explain == "all" else failing
        for n, endpoint in sorted(shown):
            f = results[n]["figures"][endpoint]
            print(
                f"\n## EXPLAIN ANALYZE, dominant query of {endpoint} at {n:,} pedidos "
                f"({f['slowest'][0] * 1000:.1f} ms of {f['sql_seconds'] * 1000:.1f} ms SQL, "
                f"request {f['miss'] * 1000:.1f} ms)\n"
            )
            print(f["slowest"][1])
            print(results[n]["explains"][endpoint])


def report(results: dict[int, dict[str, Any]], sizes: list[int]) -> None:
    print()
    print("| endpoint | " + " | ".join(f"miss @{n:,}" for n in sizes) + " | "
          + " | ".join(f"raw @{n:,}" for n in sizes) + " | "
          + " | ".join(f"hit @{n:,}" for n in sizes) + " |")  # fmt: skip
    print("|---" * (1 + 3 * len(sizes)) + "|")
    for endpoint in ENDPOINTS:
        cells = [f"{results[n]['figures'][endpoint]['miss'] * 1000:.2f} ms" for n in sizes]
        cells += [f"{results[n]['figures'][endpoint]['raw'] * 1000:.1f} ms" for n in sizes]
        cells += [f"{results[n]['figures'][endpoint]['hit'] * 1000:.3f} ms" for n in sizes]
        print(f"| {endpoint} | " + " | ".join(cells) + " |")
    big, mid = max(sizes), min(sizes)
    print()
    print(
        f"| endpoint | miss {big:,} / miss {mid:,} (target <= {GROWTH_TARGET}) "
        f"| raw / miss at {big:,} (target >= {RAW_TARGET:.0f}) "
        f"| HIT req/s / perfil req/s at {big:,} (target >= {PERFIL_TARGET}) |"
    )
    print("|---|---|---|---|")
    for endpoint in ENDPOINTS:
        f_big, f_mid = results[big]["figures"][endpoint], results[mid]["figures"][endpoint]
        growth, speedup = f_big["miss"] / f_mid["miss"], f_big["raw"] / f_big["miss"]
        hit_vs_perfil = results[big]["perfil"] / f_big["hit"]
        print(
            f"| {endpoint} | {growth:.2f} {'met' if growth <= GROWTH_TARGET else 'MISSED'} "
            f"| {speedup:.1f} {'met' if speedup >= RAW_TARGET else 'MISSED'} "
            f"| {hit_vs_perfil:.2f} {'met' if hit_vs_perfil >= PERFIL_TARGET else 'MISSED'} |"
        )
    print()
    for n in sizes:
        res = results[n]
        if res["seeded"] and res["baseline"]:
            print(
                f"seed-demo {n:,}: {res['seeded']:.1f} s with rollups, {res['baseline']:.1f} s "
                f"without ({res['seeded'] / res['baseline']:.2f}x, target <= 1.5)"
            )
        w = res["writes"]
        if w:
            print(
                f"POST /api/pedidos/ at {n:,}: p50 {w['p50_with'] * 1000:.2f} ms with rollups, "
                f"{w['p50_without'] * 1000:.2f} ms without "
                f"({w['p50_with'] / w['p50_without']:.2f}x, target <= 1.25); 40 buyers "
                f"{w['rate_with']:.1f} vs {w['rate_without']:.1f} orders/s "
                f"({w['rate_with'] / w['rate_without']:.2f}x, target >= 0.8); "
                f"statuses {w['statuses']}"
            )


if __name__ == "__main__":
    main()
