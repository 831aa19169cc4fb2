"""Dashboard load benchmark: the store's real traffic mix, with the cache and without it.

    .venv/bin/python bench/load.py [--pedidos 100000] [--seconds 60] [--baseline-seconds 30]
                                   [--json out.json]

Starts a private PostgreSQL (with pg_stat_statements) and Redis (electro_isla_testing/servers.py),
runs `flask db upgrade` and `flask seed-demo --pedidos N`, and serves the app with
gunicorn and the project's gunicorn.conf.py. Then, in one run:

1. `all-hit`   20 staff clients poll the four /api/admin/estadisticas/*/ endpoints
               every 3 s and nothing writes: every statistics request is a HIT.
2. `cache`     the mix: those 20 staff clients, 100 shoppers browsing the catalogue
               (list pages, categories, details; ~1 request/s each), and 5 orders/s
               through POST /api/pedidos/.
3. `no-cache`  the same mix on a gunicorn started with CACHE_ENABLED=0.

For each phase: throughput, p50/p95/p99 per endpoint, errors, X-Cache counts,
the cache's own hit ratio (/api/admin/cache/stats/ deltas), database statements/s
(pg_stat_statements, BEGIN/COMMIT included) and transactions/s (pg_stat_database),
and the gunicorn workers' RSS. Targets checked at the end:
statistics p95 under the mix <= 3 x all-hit p95; statements/s >= 20 x fewer with cache.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from electro_isla.catalogo.models import CATEGORIAS
from electro_isla_testing.databases import libpq_url
from electro_isla_testing.gunicorn import SECRET_KEY, GunicornServer
from electro_isla_testing.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent

STATS = ("ventas", "usuarios", "productos", "reporte")
STAFF_CLIENTS = 20
SHOPPERS = 100
ORDERS_PER_SECOND = 5.0
POLL_SECONDS = 3.0


# -- servers and data --------------------------------------------------------------------------
def start_database(pedidos: int, seed: int) -> tuple[PostgresServer, str]:
    server = PostgresServer()
    server.start()
    admin = libpq_url(server.url("postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server.stop()
    server.start_again()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "bench"')
    url = server.url("bench")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY}
    env.pop("REDIS_URL", None)
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.monotonic()
    subprocess.run(
        [*flask, "seed-demo", "--pedidos", str(pedidos), "--usuarios", str(max(200, pedidos // 20)),
         "--productos", "400", "--seed", str(seed)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"seed-demo --pedidos {pedidos}: {time.monotonic() - started:.1f} s", flush=True)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # Stock enough for every order of the run: refusals would hide the write path.
        conn.execute("UPDATE productos SET stock = stock + 1000000 WHERE activo")
        conn.execute("VACUUM ANALYZE")
    return server, url


@dataclass
class Actors:
    staff: list[dict[str, str]]
    clientes: list[dict[str, str]]
    productos: list[int]


def make_actors(database_url: str) -> Actors:
    """Bench users (staff and clientes) with tokens the gunicorn workers accept."""
    from electro_isla import create_app
    from electro_isla.auth.service import issue_access_token
    from electro_isla.catalogo.models import Producto
    from electro_isla.config import TestConfig
    from electro_isla.extensions import db
    from electro_isla.usuarios.models import Usuario

    app = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None, "SECRET_KEY": SECRET_KEY},
    )
    with app.app_context():
        staff = [
            Usuario(
                username=f"bench_staff{i}",
                email=f"bench_staff{i}@bench.test",
                rol="admin" if i % 2 == 0 else "trabajador",
                password_hash="!",
            )
            for i in range(STAFF_CLIENTS)
        ]
        clientes = [
            Usuario(
                username=f"bench_cliente{i}",
                email=f"bench_cliente{i}@bench.test",
                rol="cliente",
                password_hash="!",
            )
            for i in range(20)
        ]
        db.session.add_all(staff + clientes)
        db.session.commit()
        actors = Actors(
            staff=[{"Authorization": f"Bearer {issue_access_token(u)}"} for u in staff],
            clientes=[{"Authorization": f"Bearer {issue_access_token(u)}"} for u in clientes],
            productos=list(db.session.scalars(db.select(Producto.id).where(Producto.activo))),
        )
        db.session.remove()
        db.engine.dispose()
    return actors


# -- measurement -------------------------------------------------------------------------------
@dataclass
class Sample:
    endpoint: str
    status: int  # 0: no answer
    elapsed: float
    x_cache: str | None
    error: str | None = None


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    measuring: bool = False

    def get(self, session: requests.Session, base: str, endpoint: str, path: str, **kw: Any):
        return self.call(session, "GET", base, endpoint, path, **kw)

    def call(
        self, session: requests.Session, method: str, base: str, endpoint: str, path: str, **kw: Any
    ) -> None:
        started = time.perf_counter()
        error = None
        try:
            resp = session.request(method, base + path, timeout=60, **kw)
            status, x_cache = resp.status_code, resp.headers.get("X-Cache")
            resp.content  # noqa: B018  (read the whole body)
        except requests.RequestException as exc:
            status, x_cache = 0, None
            error = type(exc).__name__ + ": " + str(exc)[-80:]
        elapsed = time.perf_counter() - started
        if self.measuring:
            with self.lock:
                self.samples.append(Sample(endpoint, status, elapsed, x_cache, error))


class Mix:
    """The traffic: staff pollers, shoppers and an order stream, as threads."""

    def __init__(self, base: str, actors: Actors, recorder: Recorder, *, shop: bool) -> None:
        self.base = base
        self.actors = actors
        self.recorder = recorder
        self.shop = shop
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(STAFF_CLIENTS):
            self._spawn(self._staff, i)
        if self.shop:
            for i in range(SHOPPERS):
                self._spawn(self._shopper, i)
            self.orders: queue.Queue = queue.Queue()
            self._spawn(self._order_clock, 0)
            for i in range(12):
                self._spawn(self._order_worker, i)

    def _spawn(self, target: Any, i: int) -> None:
        thread = threading.Thread(target=target, args=(random.Random(i),), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _staff(self, rng: random.Random) -> None:
        headers = self.actors.staff[rng.randrange(len(self.actors.staff))]
        time.sleep(rng.uniform(0, POLL_SECONDS))  # dashboards opened at different moments
        with requests.Session() as session:
            while not self.stop.is_set():
                tick = time.monotonic()
                for name in STATS:
                    path = f"/api/admin/estadisticas/{name}/"
                    self.recorder.get(session, self.base, f"stats/{name}", path, headers=headers)
                self.stop.wait(max(0.0, POLL_SECONDS - (time.monotonic() - tick)))

    def _shopper(self, rng: random.Random) -> None:
        productos = self.actors.productos
        time.sleep(rng.uniform(0, 1))
        with requests.Session() as session:
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.35:
                    path, name = f"/api/productos/?page={rng.randint(1, 5)}", "productos/list"
                elif roll < 0.55:
                    categoria = rng.choice(CATEGORIAS)
                    path, name = f"/api/productos/?categoria={categoria}", "productos/categoria"
                else:
                    path, name = f"/api/productos/{rng.choice(productos)}/", "productos/detail"
                self.recorder.get(session, self.base, name, path)
                self.stop.wait(rng.uniform(0.5, 1.5))

    def _order_clock(self, rng: random.Random) -> None:
        """Open loop: an order every 1/5 s whatever the answers take."""
        interval = 1.0 / ORDERS_PER_SECOND
        nxt = time.monotonic()
        while not self.stop.is_set():
            self.orders.put(None)
            nxt += interval
            self.stop.wait(max(0.0, nxt - time.monotonic()))

    def _order_worker(self, rng: random.Random) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    self.orders.get(timeout=0.5)
                except queue.Empty:
                    continue
                items = [
                    {"producto_id": pid, "cantidad": rng.randint(1, 3)}
                    for pid in rng.sample(self.actors.productos, rng.randint(1, 3))
                ]
                body = {
                    "items": items,
                    "metodo_pago": rng.choice(("efectivo", "tarjeta", "transferencia")),
                    "direccion_entrega": "Calle Bench 1",
                    "telefono": "555-0100",
                }
                headers = rng.choice(self.actors.clientes)
                self.recorder.call(
                    session, "POST", self.base, "pedidos/create", "/api/pedidos/",
                    json=body, headers=headers,
                )  # fmt: skip

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=70)


def db_counters(database_url: str) -> dict[str, float]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        calls = conn.execute(
            "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'bench' "
            "AND s.query NOT ILIKE '%pg_stat%'"
        ).fetchone()[0]
        xacts = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench'"
        ).fetchone()[0]
    return {"statements": float(calls), "transactions": float(xacts), "at": time.monotonic()}


def top_statements(database_url: str, n: int = 5) -> list[dict[str, Any]]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, round(total_exec_time::numeric, 1), left(regexp_replace(query, "
            "'\\s+', ' ', 'g'), 140) FROM pg_stat_statements s JOIN pg_database d "
            "ON d.oid = s.dbid WHERE d.datname = 'bench' AND query NOT ILIKE '%%pg_stat%%' "
            "ORDER BY total_exec_time DESC LIMIT %s",
            (n,),
        ).fetchall()
    return [{"calls": c, "total_ms": float(t), "query": q} for c, t, q in rows]


def reset_statements(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def cache_stats(base: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = requests.get(f"{base}/api/admin/cache/stats/", headers=headers, timeout=30)
    return resp.json() if resp.status_code == 200 else {}


def rss_mb(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summarise(samples: list[Sample], seconds: float) -> dict[str, dict[str, Any]]:
    by: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by[s.endpoint].append(s)
        if s.endpoint.startswith("stats/"):
            by["stats (all four)"].append(s)
    out = {}
    for endpoint, items in sorted(by.items()):
        ok = [s.elapsed * 1000 for s in items if 200 <= s.status < 400]
        errors = sum(1 for s in items if not (200 <= s.status < 400))
        error_kinds: dict[str, int] = defaultdict(int)
        for s in items:
            if not (200 <= s.status < 400):
                error_kinds[str(s.status) if s.status else (s.error or "no answer")[:60]] += 1
        x_cache: dict[str, int] = defaultdict(int)
        for s in items:
            x_cache[s.x_cache or "-"] += 1
        out[endpoint] = {
            "requests": len(items),
            "rps": round(len(items) / seconds, 1),
            "p50_ms": round(pct(ok, 0.50), 1),
            "p95_ms": round(pct(ok, 0.95), 1),
            "p99_ms": round(pct(ok, 0.99), 1),
            "mean_ms": round(statistics.fmean(ok), 1) if ok else float("nan"),
            "errors": errors,
            "error_kinds": dict(error_kinds),
            "x_cache": dict(x_cache),
        }
    return out


def run_phase(
    name: str,
    server: GunicornServer,
    database_url: str,
    actors: Actors,
    *,
    shop: bool,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    print(f"[{name}] warm-up {warmup:.0f} s, measuring {seconds:.0f} s ...", flush=True)
    recorder = Recorder()
    mix = Mix(server.url, actors, recorder, shop=shop)
    mix.start()
    time.sleep(warmup)
    admin = actors.staff[0]
    stats_before = cache_stats(server.url, admin)
    reset_statements(database_url)
    db_before = db_counters(database_url)
    rss_start = rss_mb(server.worker_pids())
    load_before = os.getloadavg()[0]
    recorder.measuring = True
    started = time.monotonic()
    time.sleep(seconds)
    recorder.measuring = False
    load_after = os.getloadavg()[0]
    elapsed = time.monotonic() - started
    db_after = db_counters(database_url)
    rss_end = rss_mb(server.worker_pids())
    stats_after = cache_stats(server.url, admin)
    top = top_statements(database_url)
    mix.halt()
    db_seconds = db_after["at"] - db_before["at"]
    hits = stats_after.get("hits", 0) - stats_before.get("hits", 0)
    misses = stats_after.get("misses", 0) - stats_before.get("misses", 0)
    families = {}
    for fam, after in (stats_after.get("families") or {}).items():
        before = (stats_before.get("families") or {}).get(fam, {})
        h = after.get("hits", 0) - before.get("hits", 0)
        m = after.get("misses", 0) - before.get("misses", 0)
        f = after.get("fetches", 0) - before.get("fetches", 0)
        if h or m:
            families[fam] = {
                "hits": h,
                "misses": m,
                "fetches": f,
                "hit_ratio": round(h / (h + m), 3),
            }
    result = {
        "phase": name,
        "seconds": round(elapsed, 1),
        "requests": len(recorder.samples),
        "throughput_rps": round(len(recorder.samples) / elapsed, 1),
        "endpoints": summarise(recorder.samples, elapsed),
        "db_statements_per_s": round(db_after["statements"] / db_seconds, 1),
        "db_statements_per_request": round(
            db_after["statements"] / max(1, len(recorder.samples)), 2
        ),
        "loadavg_1m": [round(load_before, 1), round(load_after, 1)],
        "db_transactions_per_s": round(
            (db_after["transactions"] - db_before["transactions"]) / db_seconds, 1
        ),
        "cache_hit_ratio": round(hits / (hits + misses), 3) if hits + misses else None,
        "cache_families": families,
        "worker_rss_mb": {"start": rss_start, "end": rss_end},
        "top_statements": top,
    }
    print(render_phase(result), flush=True)
    return result


def render_phase(r: dict[str, Any]) -> str:
    lines = [
        f"\n### {r['phase']}: {r['throughput_rps']} req/s over {r['seconds']} s, "
        f"DB {r['db_statements_per_s']} statements/s ({r['db_transactions_per_s']} xact/s, "
        f"{r['db_statements_per_request']} statements/request), "
        f"cache hit ratio {r['cache_hit_ratio']}, load average {r['loadavg_1m']}",
        "",
        "| endpoint | req | req/s | p50 ms | p95 ms | p99 ms | errors | X-Cache |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for endpoint, e in r["endpoints"].items():
        xc = ", ".join(f"{k} {v}" for k, v in sorted(e["x_cache"].items()) if k != "-")
        lines.append(
            f"| {endpoint} | {e['requests']} | {e['rps']} | {e['p50_ms']} | {e['p95_ms']} | "
            f"{e['p99_ms']} | {e['errors']} | {xc} |"
            + (f" errors: {e['error_kinds']}" if e["errors"] else "")
        )
    return "\n".join(lines)


def shop_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the shop benchmarks (this one and bench/soak.py): the database's
    size and seed, and where the JSON results go."""
    parser.add_argument("--pedidos", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    return parser


def shop_server(database_url: str, redis_url: str, **env: str) -> GunicornServer:
    """gunicorn as deployed (the project's config decides workers and threads), quiet."""
    return GunicornServer(
        database_url,
        redis_url,
        workers=None,
        threads=None,
        use_project_config=True,
        extra_env={"LOG_LEVEL": "WARNING", **env},
    )


def main() -> int:
    parser = shop_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()

    pg, database_url = start_database(args.pedidos, args.seed)
    redis = RedisServer().start()
    servers: list[GunicornServer] = []
    try:
        actors = make_actors(database_url)

        def serve(cache_enabled: bool) -> GunicornServer:
            server = shop_server(database_url, redis.url, CACHE_ENABLED=str(int(cache_enabled)))
            servers.append(server)
            return server.start(timeout=60)

        cached = serve(True)
        print(f"gunicorn workers: {len(cached.worker_pids())}", flush=True)
        phases = [
            run_phase("all-hit", cached, database_url, actors, shop=False,
                      seconds=args.baseline_seconds, warmup=args.warmup),
            run_phase("cache", cached, database_url, actors, shop=True,
                      seconds=args.seconds, warmup=args.warmup),
        ]  # fmt: skip
        cached.stop()
        uncached = serve(False)
        phases.append(
            run_phase("no-cache", uncached, database_url, actors, shop=True,
                      seconds=args.seconds, warmup=args.warmup)
        )  # fmt: skip
        uncached.stop()
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        pg.cleanup()

    by = {p["phase"]: p for p in phases}
    base_p95 = by["all-hit"]["endpoints"]["stats (all four)"]["p95_ms"]
    mix_p95 = by["cache"]["endpoints"]["stats (all four)"]["p95_ms"]
    ratio_latency = mix_p95 / base_p95 if base_p95 else float("inf")
    with_cache = by["cache"]["db_statements_per_s"]
    without = by["no-cache"]["db_statements_per_s"]
    ratio_db = without / with_cache if with_cache else float("inf")
    per_request = (
        by["no-cache"]["db_statements_per_request"] / by["cache"]["db_statements_per_request"]
        if by["cache"]["db_statements_per_request"]
        else float("inf")
    )
    verdict = {
        "stats_p95_all_hit_ms": base_p95,
        "stats_p95_mix_ms": mix_p95,
        "stats_p95_ratio": round(ratio_latency, 2),
        "stats_p95_target_met": ratio_latency <= 3,
        "db_statements_per_s_cache": with_cache,
        "db_statements_per_s_no_cache": without,
        "db_reduction": round(ratio_db, 1),
        "db_reduction_per_request": round(per_request, 1),
        "db_target_met": ratio_db >= 20,
    }
    print("\n## Targets")
    print(
        f"- stats p95 under the mix {mix_p95} ms vs all-hit {base_p95} ms: "
        f"{ratio_latency:.2f} x (target <= 3 x): {'MET' if ratio_latency <= 3 else 'MISSED'}"
    )
    print(
        f"- DB statements/s {without} without cache vs {with_cache} with: "
        f"{ratio_db:.1f} x fewer (target >= 20 x): {'MET' if ratio_db >= 20 else 'MISSED'}; "
        f"per request {per_request:.1f} x fewer"
    )
    for p in phases:
        print(f"- {p['phase']}: cache families {p['cache_families']}")
        for t in p["top_statements"][:3]:
            print(f"    {t['calls']} calls, {t['total_ms']} ms: {t['query'][:110]}")
    if args.json:
        args.json.write_text(json.dumps({"phases": phases, "targets": verdict}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
