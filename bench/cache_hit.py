"""Benchmark: a cached GET on a HIT vs a trivial authenticated endpoint vs plain @cache.cached.

    .venv/bin/python bench/cache_hit.py [--seconds 5] [--rounds 5] [--workers 4]

Starts private PostgreSQL and Redis servers (electro_isla_testing/servers.py), seeds a
catalogue and some sales, and serves the app with gunicorn (the project's
gunicorn.conf.py: gthread workers) on loopback. It then measures, interleaved
round by round so drift hits every endpoint alike, with wrk when installed
(else Python threads):

- `hit`      GET /api/productos/<id>/   (CacheManager, HIT: the body and ETag rendered when the
             value was fetched, 304, X-Cache, stats, cache.log line; fresh after commit)
- `list`     GET /api/productos/        (CacheManager, HIT, one page of 20)
- `trivial`  GET /api/auth/me/          (authenticated, perfil from the cache, no SQL)
- `plain`    the same producto document through Flask-Caching's `@cache.cached` on a
             plain Flask view (no schema on a hit, no ETag/304; never invalidated)
- `plain_smorest` the same smorest pipeline as `hit` (schema, ETag, 304) with
             `@cache.cached` around the data instead of the CacheManager
             (both bench-only blueprints are registered below, never in the app)

and prints requests/s, ratios and Redis commands per request. Then the cold
burst: 40 concurrent requests on a cold statistics entry, with the lock and
with a server whose lock is disabled, counting `fetches`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis
import requests

from electro_isla_testing.gunicorn import GunicornServer, serve_for_measuring
from electro_isla_testing.servers import PostgresServer

ROOT = Path(__file__).resolve().parent.parent


# -- the app gunicorn serves ------------------------------------------------------------------
def bench_app():  # noqa: ANN201
    """The real app plus a bench-only blueprint cached the way most Flask users would."""
    from flask import Blueprint
    from flask_caching import Cache
    from flask_smorest import abort

    from electro_isla import create_app
    from electro_isla.catalogo.models import Producto
    from electro_isla.catalogo.schemas import ProductoSchema
    from electro_isla.catalogo.service import producto_data
    from electro_isla.extensions import db

    lock = os.environ.get("BENCH_CACHE_LOCK", "1") == "1"
    app = create_app(overrides={"CACHE_LOCK_ENABLED": lock})
    plain = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": app.config["REDIS_URL"],
            "CACHE_KEY_PREFIX": app.config["CACHE_KEY_PREFIX"] + "-plain:",
            "CACHE_DEFAULT_TIMEOUT": 300,
        },
    )
    blp = Blueprint("bench_plain", __name__)
    schema = ProductoSchema()

    @blp.get("/bench/plain/productos/<int:producto_id>/")
    @plain.cached(timeout=300)
    def plain_producto(producto_id: int):  # noqa: ANN202
        producto = db.session.get(Producto, producto_id)
        if producto is None or not producto.activo:
            abort(404, message="Producto not found.")
        return schema.dump(producto_data(producto))

    app.register_blueprint(blp)

    # The same smorest pipeline as the real endpoint (schema dump, ETag, 304), with
    # @cache.cached around the data instead of the CacheManager.
    from flask.views import MethodView
    from flask_smorest import Blueprint as SmorestBlueprint

    from electro_isla.extensions import api

    sblp = SmorestBlueprint("bench_plain_smorest", __name__, url_prefix="/bench")

    @sblp.route("/plain-smorest/productos/<int:producto_id>/")
    class PlainSmorest(MethodView):
        @sblp.etag
        @sblp.response(200, ProductoSchema)
        @plain.cached(timeout=300)
        def get(self, producto_id: int):  # noqa: ANN202
            producto = db.session.get(Producto, producto_id)
            if producto is None or not producto.activo:
                abort(404, message="Producto not found.")
            return producto_data(producto)

    api.register_blueprint(sblp)
    return app


# -- setup ------------------------------------------------------------------------------------
def seed_sql(now: str = "now()") -> list[str]:
    """The catalogue and sales every HTTP bench seeds; `now` is the SQL of its instant
    (a literal gives two databases the same rows to the microsecond)."""
    return [
        sql.format(now=now)
        for sql in (
            """INSERT INTO productos (nombre, descripcion, precio, descuento, stock, categoria,
                   imagen_url, activo, created_at, updated_at)
               SELECT 'Producto ' || i, 'Descripción del producto ' || i, 10 + (i % 90) * 7.25, i % 30,
                   i % 50, (ARRAY['electrodomesticos','energia_tecnologia','herramientas',
                   'hogar_entretenimiento','otros'])[1 + i % 5], '', true, {now}, {now}
               FROM generate_series(1, 200) i""",
            """INSERT INTO usuarios (username, email, password_hash, first_name, last_name, rol,
                   is_active, date_joined, telefono, direccion)
               SELECT 'u' || i, 'u' || i || '@bench.test', '!', 'Nombre', 'Apellido',
                   CASE WHEN i = 1 THEN 'admin' ELSE 'cliente' END, true,
                   {now} - (i % 360) * interval '1 day', '', ''
               FROM generate_series(1, 3000) i""",
            """INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono,
                   notas, created_at, updated_at)
               SELECT 1 + i % 3000, (ARRAY['pendiente','confirmado','en_preparacion','en_camino',
                   'entregado','cancelado'])[1 + i % 6], (ARRAY['efectivo','tarjeta',
                   'transferencia'])[1 + i % 3], 0, 'Calle ' || i, '555', '',
                   {now} - (i % 360) * interval '1 day', {now}
               FROM generate_series(1, 60000) i""",
            """INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad,
                   precio_unitario, subtotal)
               SELECT p.id, 1 + (p.id * k) % 200, 'Producto', 1 + k, 10, 10 * (1 + k)
               FROM pedidos p, generate_series(1, 2) k""",
            "UPDATE pedidos SET total = s.t FROM (SELECT pedido_id, sum(subtotal) t FROM detalles_pedido"
            " GROUP BY pedido_id) s WHERE s.pedido_id = pedidos.id",
            "ANALYZE",
        )
    ]


def prepare_database(pg: PostgresServer) -> str:
    """The `bench` database on `pg`: migrated (triggers included), then seeded; its URL."""
    from sqlalchemy import create_engine, text

    from electro_isla_testing.databases import create_database

    db_url = create_database(pg, "bench")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for sql in seed_sql():
            conn.execute(text(sql))
    engine.dispose()
    return db_url


def production_env(db_url: str, log_dir: str, **settings: str) -> dict[str, str]:
    """What a benchmark's gunicorns and its token minting share: this environment, production
    settings on `db_url`, a fresh signing key, logs in `log_dir`; `settings` on top."""
    return {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": db_url,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "LOG_DIR": log_dir,
        **settings,
    }


def admin_token(env: dict[str, str]) -> str:
    from electro_isla import create_app
    from electro_isla.auth.service import issue_access_token
    from electro_isla.config import ProdConfig
    from electro_isla.extensions import db
    from electro_isla.usuarios.models import Usuario

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app(ProdConfig)
        with app.app_context():
            token = issue_access_token(db.session.get(Usuario, 1))
            db.engine.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return token


# -- load -------------------------------------------------------------------------------------
def load(url: str, headers: dict[str, str], seconds: float, connections: int) -> tuple[float, int]:
    """(requests per second, requests) on `url` (wrk when installed; else Python threads)."""
    wrk = shutil.which("wrk")
    if wrk:
        cmd = [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
        if "Non-2xx" in out:
            raise RuntimeError(f"errors while loading {url}:\n{out}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        return rps, int(re.search(r"(\d+) requests in", out).group(1))
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal count
        session = requests.Session()
        n = 0
        while time.monotonic() < stop:
            assert session.get(url, headers=headers, timeout=10).status_code == 200
            n += 1
        with lock:
            count += n

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.monotonic() - started), count


SCRIPT_INNER_CALLS = 5  # MGET, TIME, GET, HINCRBY, HSET inside the lookup script on a hit
# The composed page's script on a HIT (cache/composed.py): GET generation, GET id list,
# MGET the rows' generations, GET the page memo, TIME, HINCRBY, HSET.
PAGE_SCRIPT_INNER_CALLS = 7


TICK = os.sysconf("SC_CLK_TCK")


# The benchmark app: wsgi:app plus the plain Flask-Caching and smorest baselines.
APP = "bench.cache_hit:bench_app()"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` (from /proc), immune to what else runs."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone (or going) meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return found


def redis_round_trips(client: redis.Redis, inner: int = SCRIPT_INNER_CALLS) -> int:
    """Commands clients sent (Redis counts a script's `inner` calls too: remove them)."""
    stats = client.info("commandstats")
    total = sum(v["calls"] for v in stats.values())
    scripts = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    return total - inner * scripts


def cold_burst(base: str, admin: dict[str, str], n: int = 40) -> int:
    """n concurrent requests on a freshly cleared statistics entry -> fetches it cost."""
    path = "/api/admin/estadisticas/ventas/"

    def fetches() -> int:
        stats = requests.get(base + "/api/admin/cache/stats/", headers=admin, timeout=10).json()
        return stats["families"]["estadisticas_ventas"]["fetches"]

    clear = requests.post(
        base + "/api/admin/cache/clear/",
        headers=admin,
        json={"pattern": "estadisticas_ventas"},
        timeout=10,
    )
    clear.raise_for_status()
    before = fetches()
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def worker() -> None:
        session = requests.Session()
        barrier.wait()
        codes.append(session.get(base + path, headers=admin, timeout=60).status_code)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * n, codes
    return fetches() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    from electro_isla_testing.servers import PostgresServer, RedisServer

    pg = PostgresServer()
    pg.start()
    rs = RedisServer().start()
    log_dir = tempfile.mkdtemp(prefix="ei-bench-logs-")
    servers: list[GunicornServer] = []
    try:
        t0 = time.monotonic()
        db_url = prepare_database(pg)
        print(f"seeded 200 productos, 3000 usuarios, 60000 pedidos in {time.monotonic() - t0:.1f}s")
        env = production_env(db_url, log_dir, REDIS_URL=rs.url, CACHE_KEY_PREFIX="bench")
        token = admin_token(env)
        auth = {"Authorization": f"Bearer {token}"}
        server = serve_for_measuring(
            env, args.workers, app=APP, extra_env={"BENCH_CACHE_LOCK": "1"}
        )
        servers.append(server)
        base = server.url
        endpoints = {
            "hit": (base + "/api/productos/7/", {}),
            "list": (base + "/api/productos/", {}),
            "trivial": (base + "/api/auth/me/", auth),
            "plain": (base + "/bench/plain/productos/7/", {}),
            "plain_smorest": (base + "/bench/plain-smorest/productos/7/", {}),
        }
        for name, (url, headers) in endpoints.items():
            for _ in range(3):  # warm every worker's path and the cache
                response = requests.get(url, headers=headers, timeout=10)
                response.raise_for_status()
            if name in ("hit", "list"):
                assert response.headers["X-Cache"] == "HIT", (name, response.headers)
        documents = {n: requests.get(endpoints[n][0], timeout=5).json() for n in ("hit", "plain")}
        documents["plain_smorest"] = requests.get(endpoints["plain_smorest"][0], timeout=5).json()
        assert documents["hit"] == documents["plain"] == documents["plain_smorest"], documents
        # The HIT's stored body and ETag are exactly what the smorest pipeline renders.
        hit_r, smorest_r = (
            requests.get(endpoints[n][0], timeout=5) for n in ("hit", "plain_smorest")
        )
        assert hit_r.content == smorest_r.content, (hit_r.content, smorest_r.content)
        assert hit_r.headers["ETag"] == smorest_r.headers["ETag"], (
            hit_r.headers,
            smorest_r.headers,
        )

        client = redis.Redis.from_url(rs.url)
        results: dict[str, list[float]] = {name: [] for name in endpoints}
        calls: dict[str, list[float]] = {name: [] for name in endpoints}
        cpu_us: dict[str, list[float]] = {name: [] for name in endpoints}
        # What serves a request: the gunicorn workers and Redis (PostgreSQL is idle on hits).
        serving = [*children(server.proc.pid), rs.proc.pid]
        stats_url = base + "/api/admin/cache/stats/"
        misses_before = requests.get(stats_url, headers=auth, timeout=10).json()["misses"]
        tool = "wrk" if shutil.which("wrk") else "python threads"
        print(f"load average before measuring: {os.getloadavg()}")
        print(
            f"load: {tool}, {args.connections} connections, {args.seconds:.0f}s x "
            f"{args.rounds} rounds per endpoint, interleaved; gunicorn {args.workers} "
            f"gthread workers x 4 threads; {os.cpu_count()} cores shared with the load generator"
        )
        for r in range(args.rounds):
            for name, (url, headers) in endpoints.items():
                inner = PAGE_SCRIPT_INNER_CALLS if name == "list" else SCRIPT_INNER_CALLS
                before, cpu_before = redis_round_trips(client, inner), cpu_seconds(serving)
                rps, done = load(url, headers, args.seconds, args.connections)
                after, cpu_after = redis_round_trips(client, inner), cpu_seconds(serving)
                results[name].append(rps)
                calls[name].append((after - before) / max(done, 1))
                cpu_us[name].append((cpu_after - cpu_before) * 1e6 / max(done, 1))
                print(
                    f"  round {r + 1} {name:<14} {rps:9.1f} req/s  "
                    f"{cpu_us[name][-1]:7.0f} CPU us/request"
                )
        stats = requests.get(stats_url, headers=auth, timeout=10).json()
        misses_during = stats["misses"] - misses_before

        med = {name: statistics.median(v) for name, v in results.items()}
        cpu = {name: statistics.median(v) for name, v in cpu_us.items()}
        # Capacity: requests per CPU-second of the serving processes (workers + Redis).
        cap = {name: 1e6 / cpu[name] for name in endpoints}
        print("\nendpoint       median req/s  CPU us/request  req per CPU-s  Redis round trips/req")
        for name in endpoints:
            print(
                f"{name:<14} {med[name]:12.1f}  {cpu[name]:14.0f}  {cap[name]:13.0f}  "
                f"{statistics.median(calls[name]):8.2f}"
            )

        # Ratios within each round (endpoints measured back to back), then the median
        # over rounds: drift in what else the machine runs cancels out within a round.
        def ratio(a: str, b: str, series: dict[str, list[float]], invert: bool) -> float:
            pairs = zip(series[a], series[b], strict=True)
            return statistics.median((y / x) if invert else (x / y) for x, y in pairs)

        ratios = {}
        print("\nratios (median of per-round)   wall req/s   per CPU-second   target")
        for label, a, b, target in (
            ("HIT / trivial auth", "hit", "trivial", ">= 0.85"),
            ("HIT / @cache.cached", "hit", "plain", ">= 1.0"),
            ("HIT / smorest+@cache.cached", "hit", "plain_smorest", ">= 1.0"),
            ("list / trivial auth", "list", "trivial", "-"),
        ):
            wall, per_cpu = ratio(a, b, results, False), ratio(a, b, cpu_us, True)
            ratios[label] = {"wall": round(wall, 3), "cpu": round(per_cpu, 3)}
            print(f"{label:<30} {wall:10.3f}   {per_cpu:14.3f}   {target}")
        print(f"cache misses during the load: {misses_during} (hit ratio {stats['hit_ratio']})")

        with_lock = [cold_burst(base, auth) for _ in range(3)]
        server.stop()
        servers.remove(server)
        server = serve_for_measuring(
            env, args.workers, app=APP, extra_env={"BENCH_CACHE_LOCK": "0"}
        )
        servers.append(server)
        without_lock = [cold_burst(server.url, auth) for _ in range(3)]
        print(
            f"\ncold burst, 40 concurrent GET {('/api/admin/estadisticas/ventas/')} "
            f"(60000 pedidos):\n  fetches with the lock   : {with_lock}\n"
            f"  fetches without the lock: {without_lock}"
        )
        print(
            json.dumps(
                {
                    "median_rps": {k: round(v, 1) for k, v in med.items()},
                    "cpu_us_per_request": {k: round(v) for k, v in cpu.items()},
                    "ratios": ratios,
                    "burst_fetches_with_lock": with_lock,
                    "burst_fetches_without_lock": without_lock,
                }
            )
        )
    finally:
        for server in servers:
            server.stop()
        rs.stop()
        pg.cleanup()
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
