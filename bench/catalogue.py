"""Benchmark: the catalogue under orders, a base commit's code beside this tree's, in one run.

    .venv/bin/python bench/catalogue.py [--base 4c1db6e] [--seconds 30] [--rounds 5]
                                        [--hit-seconds 4] [--shoppers 40] [--workers 4]

Starts private PostgreSQL and Redis servers (electro_isla_testing/servers.py) and
serves two gunicorns side by side on loopback, with the project's gunicorn.conf.py
and the same virtualenv: `base` runs the code of the commit given by --base (a
`git archive` export in a temp dir), `head` this working tree. Each tree has its
own database, migrated by its own migrations (electro_isla_testing/trees.py: the
schema moves, 0008 replaced tables 3e70ac8 reads) and filled by the same SQL, the
catalogue and sales of bench/cache_hit.py (200 productos, 3000 usuarios, 60000
pedidos); each server has its own cache key prefix on the one Redis.

1. `hit` (both servers, interleaved round by round, first, while both databases
   hold the same rows; both answers are compared): requests/s of a list HIT
   (GET /api/productos/), a detail HIT (GET /api/productos/7/) and a statistics
   HIT (GET /api/admin/estadisticas/reporte/, as the admin), nothing writing, and
   the Redis round trips per request. Ratios head/base per round, median.
2. `mix` (per server, one after the other, same seed, from empty caches):
   shoppers browse catalogue pages (the first page of each category, the first
   pages of the whole catalogue, a few searches) with a short pause, while orders
   arrive at 5/s (open loop, POST /api/pedidos/, 1-3 productos each). Reported:
   the catalogue hit ratio (X-Cache of every page answered: HIT / (HIT + MISS)),
   requests, p50/p95, orders placed.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import redis
import requests
from cache_hit import children, cpu_seconds, load, production_env, seed_sql

from electro_isla.catalogo.models import CATEGORIAS
from electro_isla_testing.databases import libpq_url
from electro_isla_testing.gunicorn import GunicornServer, serve_for_measuring
from electro_isla_testing.servers import PostgresServer, RedisServer
from electro_isla_testing.trees import exported, tree_database

ROOT = Path(__file__).resolve().parent.parent

SEARCHES = ("producto 1", "descripción del producto 7", "5", "producto 12")
PAGES = (
    [f"/api/productos/?categoria={c}" for c in CATEGORIAS]
    + [f"/api/productos/?page={n}" for n in (1, 2, 3)]
    + [f"/api/productos/?q={q}" for q in SEARCHES]
)
ORDERS_PER_SECOND = 5.0


@dataclass
class Stage:
    """One private PostgreSQL + Redis, the base and head trees, a database each, their servers."""

    db_urls: dict[str, str]
    common: dict[str, str]
    trees: dict[str, Path]
    redis: RedisServer
    servers: dict[str, GunicornServer] = field(default_factory=dict)

    def env(self, tree: str, prefix: str) -> dict[str, str]:
        """What a server of `tree` runs with: its tree's database, its own key prefix."""
        return {**self.common, "DATABASE_URL": self.db_urls[tree], "CACHE_KEY_PREFIX": prefix}


@contextmanager
def base_beside_head(base: str, stock_sql: str) -> Iterator[Stage]:
    """The shared set-up of the base-vs-head benches, and its teardown whatever happens.

    Each tree gets its own database, migrated by its own migrations (the schema
    moves: 0008 replaced tables 3e70ac8's statistics read), then filled by the same
    `seed_sql` (at one instant) and `stock_sql` (e.g. stock no order can exhaust):
    the same rows, with what each tree's triggers derive from them. `common` (for
    minting tokens) names head's database.
    """
    pg = PostgresServer()
    rs = RedisServer().start()
    stage = None
    try:
        pg.start()
        with (
            exported(base) as base_tree,
            tempfile.TemporaryDirectory(prefix="ei-bench-logs-") as log_dir,
        ):
            try:
                trees = {"base": base_tree, "head": ROOT}
                # One instant for both databases' rows, so both trees answer the same.
                now = f"'{datetime.now(UTC).isoformat()}'::timestamptz"
                db_urls = {}
                for name, tree in trees.items():
                    db_urls[name] = tree_database(pg, f"bench_{name}", tree, rs.url)
                    with psycopg.connect(libpq_url(db_urls[name]), autocommit=True) as conn:
                        for sql in [*seed_sql(now), stock_sql]:
                            conn.execute(sql)
                common = production_env(db_urls["head"], log_dir, REDIS_URL=rs.url)
                stage = Stage(db_urls, common, trees, rs)
                yield stage
            finally:
                for server in stage.servers.values() if stage else ():
                    server.stop()
    finally:
        rs.stop()
        pg.cleanup()


def tokens(env: dict[str, str], ids: list[int]) -> list[dict[str, str]]:
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
            out = [
                {"Authorization": f"Bearer {issue_access_token(db.session.get(Usuario, i))}"}
                for i in ids
            ]
            db.engine.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out


def mix(base: str, seconds: float, shoppers: int, clientes: list[dict[str, str]]) -> dict:
    """Shoppers on catalogue pages while orders arrive at 5/s; X-Cache of every page."""
    stop = threading.Event()
    lock = threading.Lock()
    seen: dict[str, int] = {"HIT": 0, "MISS": 0, "BYPASS": 0, "other": 0}
    latencies: list[float] = []
    orders = {"placed": 0, "failed": 0}
    tickets: queue.Queue = queue.Queue()

    def shopper(rng: random.Random) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.perf_counter()
                r = session.get(base + rng.choice(PAGES), timeout=30)
                elapsed = time.perf_counter() - started
                with lock:
                    key = r.headers.get("X-Cache", "other") if r.status_code == 200 else "other"
                    seen[key] = seen.get(key, 0) + 1
                    latencies.append(elapsed)
                stop.wait(rng.uniform(0.05, 0.25))

    def clock() -> None:
        nxt = time.monotonic()
        while not stop.is_set():
            tickets.put(None)
            nxt += 1.0 / ORDERS_PER_SECOND
            stop.wait(max(0.0, nxt - time.monotonic()))

    def orderer(rng: random.Random) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    tickets.get(timeout=0.5)
                except queue.Empty:
                    continue
                body = {
                    "items": [
                        {"producto_id": pid, "cantidad": 1}
                        for pid in rng.sample(range(1, 201), rng.randint(1, 3))
                    ],
                    "metodo_pago": "tarjeta",
                    "direccion_entrega": "Calle Bench 1",
                    "telefono": "555-0100",
                }
                r = session.post(
                    base + "/api/pedidos/", json=body, headers=rng.choice(clientes), timeout=30
                )
                with lock:
                    orders["placed" if r.status_code == 201 else "failed"] += 1

    threads = [threading.Thread(target=shopper, args=(random.Random(i),)) for i in range(shoppers)]
    threads += [threading.Thread(target=clock)]
    threads += [threading.Thread(target=orderer, args=(random.Random(1000 + i),)) for i in range(6)]
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    wall = time.monotonic() - started
    looked_up = seen["HIT"] + seen["MISS"]
    latencies.sort()
    return {
        "hit_ratio": round(seen["HIT"] / looked_up, 4) if looked_up else 0.0,
        "x_cache": seen,
        "pages_per_s": round(sum(seen.values()) / wall, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1),
        "orders_per_s": round(orders["placed"] / wall, 2),
        "orders_failed": orders["failed"],
    }


def redis_calls(client: redis.Redis) -> tuple[int, int]:
    """(EVALSHA calls, every command counted, a script's inner calls included)."""
    stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    return evalsha, sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="4c1db6e")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hit-seconds", type=float, default=4.0)
    parser.add_argument("--shoppers", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    # Orders never run out of stock.
    with base_beside_head(args.base, "UPDATE productos SET stock = 1000000") as stage:
        common, trees, servers, rs = stage.common, stage.trees, stage.servers, stage.redis
        # Minted by head's code on head's database; the same users (same ids) are in
        # base's, and the servers share `common`'s signing key.
        clientes = tokens({**common, "CACHE_KEY_PREFIX": "tokens"}, list(range(2, 22)))
        admin = tokens({**common, "CACHE_KEY_PREFIX": "tokens"}, [1])[0]  # usuario 1: admin
        for name, tree in trees.items():
            env = stage.env(name, f"bench-{name}")
            servers[name] = serve_for_measuring(env, args.workers, tree=tree)
        print(f"load average before measuring: {os.getloadavg()}; {os.cpu_count()} cores")

        results: dict = {"mix": {}, "hit": {}}
        client = redis.Redis.from_url(rs.url)
        # The HIT phase first, while both databases still hold the same rows (the
        # mix's orders change each server's own database), so both answers can be
        # compared; the mix after it, from empty caches.
        endpoints = {
            "list": ("/api/productos/", {}),
            "detail": ("/api/productos/7/", {}),
            "statistics": ("/api/admin/estadisticas/reporte/", admin),
        }
        rps: dict[str, list[float]] = {f"{s}/{e}": [] for s in servers for e in endpoints}
        trips: dict[str, list[float]] = {k: [] for k in rps}
        inner: dict[str, list[float]] = {k: [] for k in rps}
        cpu: dict[str, list[float]] = {k: [] for k in rps}
        serving = {s: [*children(srv.proc.pid), rs.proc.pid] for s, srv in servers.items()}
        bodies = {}
        for s, server in servers.items():
            for e, (path, headers) in endpoints.items():
                for _ in range(3):  # one Host for both, so the links match too
                    r = requests.get(
                        server.url + path, headers={**headers, "Host": "bench.test"}, timeout=10
                    )
                assert r.headers["X-Cache"] == "HIT", (s, e, r.headers)
                bodies[(s, e)] = (r.content, r.headers["ETag"])
        for e in endpoints:  # same data from both trees (money may be rendered apart:
            # this tree writes exact two-decimal literals, 12.00 where older code wrote 12.0)
            base_doc, head_doc = (
                json.loads(bodies[(s, e)][0], parse_float=Decimal) for s in ("base", "head")
            )
            # Each server computed its statistics at its own instant.
            instant = {"generado_en": None, "fecha_generacion": None}
            same = {**base_doc, **instant} == {**head_doc, **instant}
            if not same:
                for s in servers:
                    Path(f"/tmp/ei-bench-{s}-{e}.body").write_bytes(bodies[(s, e)][0])
                raise AssertionError(f"{e}: base and head answer differently")
        for server in servers.values():  # untimed: every worker and connection warm
            for path, headers in endpoints.values():
                load(server.url + path, headers, 1.0, args.connections)
        for r in range(args.rounds):
            for e, (path, headers) in endpoints.items():
                for s, server in servers.items():
                    key = f"{s}/{e}"
                    before, cpu_before = redis_calls(client), cpu_seconds(serving[s])
                    got, done = load(server.url + path, headers, args.hit_seconds, args.connections)
                    after, cpu_after = redis_calls(client), cpu_seconds(serving[s])
                    rps[key].append(got)
                    trips[key].append((after[0] - before[0]) / max(done, 1))
                    inner[key].append((after[1] - before[1]) / max(done, 1))
                    cpu[key].append((cpu_after - cpu_before) * 1e6 / max(done, 1))
                    print(
                        f"  round {r + 1} {key:<12} {got:8.1f} req/s {cpu[key][-1]:7.0f} CPU us/req"
                    )

        client.flushall()
        for name, server in servers.items():
            for url in PAGES:  # warm: every page cached once before the clock starts
                requests.get(server.url + url, timeout=30).raise_for_status()
            results["mix"][name] = mix(server.url, args.seconds, args.shoppers, clientes)
            print(f"mix {name}: {json.dumps(results['mix'][name])}")
        for key in rps:
            results["hit"][key] = {
                "median_rps": round(statistics.median(rps[key]), 1),
                "cpu_us_per_request": round(statistics.median(cpu[key])),
                "evalsha_per_request": round(statistics.median(trips[key]), 2),
                "redis_commands_incl_script_inner": round(statistics.median(inner[key]), 1),
            }
        results["ratios"] = {
            e: {
                "wall": round(
                    statistics.median(
                        h / b for h, b in zip(rps[f"head/{e}"], rps[f"base/{e}"], strict=True)
                    ),
                    3,
                ),
                "per_cpu": round(
                    statistics.median(
                        b / h for h, b in zip(cpu[f"head/{e}"], cpu[f"base/{e}"], strict=True)
                    ),
                    3,
                ),
            }
            for e in endpoints
        }
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
