"""Benchmark: the same cache HIT on a single Redis, behind Sentinel and on a Redis Cluster.

    .venv/bin/python bench/redis_modes.py [--seconds 5] [--rounds 5] [--workers 2]

Starts private servers on loopback (electro_isla_testing/servers.py): PostgreSQL, one Redis,
a master + replica + 3 sentinels, and a 3-master cluster; seeds the catalogue
(bench/cache_hit.py's SQL) and serves `wsgi:app` with gunicorn (the project's
gunicorn.conf.py) three times, once per REDIS_MODE, all on the same database.
Then, round by round and interleaved so drift hits every mode alike, loads
GET /api/productos/7/ (a HIT: one Lua script round trip) on each with wrk
(Python threads without it), and prints requests/s and each mode's ratio to
the single Redis within the round (median over rounds). Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import requests
from cache_hit import children, cpu_seconds, load, prepare_database, production_env

from electro_isla_testing.gunicorn import GunicornServer, serve_for_measuring

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    from electro_isla_testing.servers import (
        PostgresServer,
        RedisClusterServers,
        RedisServer,
        SentinelSet,
    )

    pg = PostgresServer()
    pg.start()
    single = RedisServer().start()
    sentinels = SentinelSet().start()
    cluster = RedisClusterServers().start()
    log_dir = tempfile.mkdtemp(prefix="ei-bench-logs-")
    apis: dict[str, GunicornServer] = {}
    try:
        db_url = prepare_database(pg)
        base_env = production_env(db_url, log_dir)
        base_env.pop("REDIS_URL", None)
        modes = {
            "single": {"REDIS_MODE": "standalone", "REDIS_URL": single.url},
            "sentinel": {
                "REDIS_MODE": "sentinel",
                "REDIS_SENTINELS": sentinels.sentinel_hosts,
                "REDIS_SENTINEL_MASTER": sentinels.service,
            },
            # This cluster has no replicas: nothing could acknowledge a WAIT.
            "cluster": {
                "REDIS_MODE": "cluster",
                "REDIS_URL": cluster.url,
                "CACHE_WAIT_REPLICAS": "0",
            },
        }
        for name, extra in modes.items():
            env = {**base_env, **extra, "CACHE_KEY_PREFIX": f"bench-{name}"}
            apis[name] = serve_for_measuring(env, args.workers)
        for name, api in apis.items():
            url = api.url + "/api/productos/7/"
            for _ in range(args.workers * 8):  # every worker imports the app, then HITs
                response = requests.get(url, timeout=10)
                response.raise_for_status()
            assert response.headers["X-Cache"] == "HIT", (name, response.headers)
        bodies = {
            n: requests.get(a.url + "/api/productos/7/", timeout=5).content for n, a in apis.items()
        }
        assert len(set(bodies.values())) == 1, "the modes answer different documents"

        print(f"load average before measuring: {os.getloadavg()}")
        print(
            f"GET /api/productos/7/ (HIT), {args.connections} connections, {args.seconds:.0f}s x "
            f"{args.rounds} rounds per mode, interleaved; gunicorn {args.workers} workers x 4 "
            f"threads per mode; {os.cpu_count()} cores shared with the load generator"
        )
        # What serves a HIT: the mode's gunicorn workers and its Redis processes
        # (the replica and the cluster's other nodes included: replication and
        # cluster bus work count against the mode). CPU per request is immune to
        # what else the shared machine runs; wall req/s is not.
        redis_pids = {
            "single": [single.proc.pid],
            "sentinel": [sentinels.master.proc.pid, sentinels.replica.proc.pid],
            "cluster": [n.proc.pid for n in cluster.nodes],
        }
        serving = {n: [*children(a.proc.pid), *redis_pids[n]] for n, a in apis.items()}
        results: dict[str, list[float]] = {n: [] for n in apis}
        cpu_us: dict[str, list[float]] = {n: [] for n in apis}
        for r in range(args.rounds):
            order = list(apis) if r % 2 == 0 else list(reversed(apis))
            for name in order:
                before = cpu_seconds(serving[name])
                rps, done = load(
                    apis[name].url + "/api/productos/7/", {}, args.seconds, args.connections
                )
                cpu_us[name].append((cpu_seconds(serving[name]) - before) * 1e6 / max(done, 1))
                results[name].append(rps)
                print(
                    f"  round {r + 1} {name:<9} {rps:9.1f} req/s {cpu_us[name][-1]:6.0f} CPU us/req"
                )
        med = {n: statistics.median(v) for n, v in results.items()}
        cpu = {n: statistics.median(v) for n, v in cpu_us.items()}

        def ratio(series: dict[str, list[float]], mode: str, invert: bool) -> float:
            pairs = zip(series[mode], series["single"], strict=True)
            return statistics.median((y / x) if invert else (x / y) for x, y in pairs)

        ratios = {
            n: {"wall": round(ratio(results, n, False), 3), "cpu": round(ratio(cpu_us, n, True), 3)}
            for n in ("sentinel", "cluster")
        }
        print("\nmode       median req/s  CPU us/req   ratio to single: wall  per CPU-s  target")
        for n in apis:
            wall = "-" if n == "single" else f"{ratios[n]['wall']:.3f}"
            per_cpu = "-" if n == "single" else f"{ratios[n]['cpu']:.3f}"
            target = "" if n == "single" else ">= 0.9"
            print(f"{n:<10} {med[n]:12.1f}  {cpu[n]:10.0f}   {wall:>21}  {per_cpu:>9}  {target}")
        print(
            json.dumps(
                {
                    "median_rps": {k: round(v, 1) for k, v in med.items()},
                    "cpu_us_per_request": {k: round(v) for k, v in cpu.items()},
                    "ratio_to_single": ratios,
                }
            )
        )
    finally:
        for api in apis.values():
            api.stop()
        cluster.stop()
        sentinels.stop()
        single.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
