"""Benchmark: a cache HIT's CPU, a base commit's code beside this tree's, in-process, in one run.

    .venv/bin/python bench/hit_ab.py [--base 3e70ac8] [--reps 30] [--batch 200] [--profile DIR]

The HTTP bench (catalogue.py) swings ±15 % per round on a shared 2-core machine;
this one leaves out gunicorn, sockets and the client, and measures what the app
itself spends on a HIT. Starts a private PostgreSQL and Redis and runs two
worker processes on the same virtualenv (bench/beside.py): `base` imports the
code of the commit given by --base (a `git archive` export in a temp dir), `head`
this working tree, each on a small database of its own (migrated by its own
migrations, seeded by its own `flask seed-demo`, same arguments) and with its own
key prefix on the one Redis. Each worker serves requests through its WSGI app
(`app.test_client()`); after a warm-up every request below is a HIT:

    detail      GET /api/productos/7/
    list        GET /api/productos/
    statistics  GET /api/admin/estadisticas/reporte/   (as an admin)
    perfil      GET /api/perfil/                       (as the same admin)

Rep by rep, endpoint by endpoint, in a shuffled worker order, each worker times a
batch of `--batch` requests (process CPU time). Printed: median CPU µs per
request, head/base ratio (the median of the per-batch ratios), Redis commands per
request (INFO commandstats around one batch), and statistics/perfil per tree (the
issue 18 target reads it as throughput: perfil CPU / statistics CPU).
`--base HEAD` gives an A/A run; `--profile DIR` writes one cProfile of a batch of
each endpoint per tree (DIR/<tree>-<endpoint>.prof).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from miss import miss_app  # bench/miss.py, beside this file

ENDPOINTS = {
    "detail": ("/api/productos/7/", False),
    "list": ("/api/productos/", False),
    "statistics": ("/api/admin/estadisticas/reporte/", True),
    "perfil": ("/api/perfil/", True),
}


def worker(db_url: str, redis_url: str) -> None:
    """One tree's HITs on command: 'endpoint n [profile-path]' per stdin line, 'cpu wall' out.

    The tree's package comes first on the path through PYTHONPATH (set by main).
    """
    import cProfile

    app, auth = miss_app(
        db_url,
        redis_url,
        prefix=f"hit{uuid.uuid4().hex[:6]}",
        log_dir=tempfile.mkdtemp(prefix="bench-hit-"),
    )
    client = app.test_client()

    def get(endpoint: str) -> None:
        path, needs_auth = ENDPOINTS[endpoint]
        response = client.get(path, headers=auth if needs_auth else None)
        assert response.status_code == 200, (endpoint, response.status_code)

    for endpoint in ENDPOINTS:  # fill the entries, warm connections and the token
        for _ in range(3):
            get(endpoint)
    for endpoint, (path, needs_auth) in ENDPOINTS.items():
        answered = client.get(path, headers=auth if needs_auth else None)
        assert answered.headers.get("X-Cache") == "HIT", (endpoint, answered.headers)
    print("ready", flush=True)
    for line in sys.stdin:
        endpoint, n, *profile = line.split()
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for _ in range(int(n)):
            get(endpoint)
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.dump_stats(profile[0])
        print(f"{cpu} {wall}", flush=True)


SEED = ["seed-demo", "--pedidos", "3000", "--usuarios", "300", "--productos", "200"]
SEED += ["--meses", "12", "--seed", "42"]


def commands(client: object) -> int:
    """Redis commands executed so far (every command, scripts' inner calls included)."""
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="3e70ac8")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--profile", help="directory for one cProfile per tree and endpoint")
    args = parser.parse_args()

    import redis as redis_py

    # Imported here, not at the top: the workers run this file with a base tree
    # first on the path, and need none of it.
    from beside import interleaved, workers_beside

    with workers_beside(__file__, args.base, "bench_hit", SEED) as (workers, redis_url):

        def batch(key: str, endpoint: str, n: int, profile: str = "") -> float:
            return float(workers[key].ask(f"{endpoint} {n} {profile}")[0]) / n * 1e6

        counter = redis_py.Redis.from_url(redis_url)
        per_request: dict[str, dict[str, float]] = {k: {} for k in workers}
        for key in workers:
            for endpoint in ENDPOINTS:
                before = commands(counter)
                batch(key, endpoint, 50)
                per_request[key][endpoint] = (commands(counter) - before) / 50
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for key in workers:
                for endpoint in ENDPOINTS:
                    batch(key, endpoint, args.batch, f"{args.profile}/{key}-{endpoint}.prof")
        seen: dict[str, dict[str, list[float]]] = {k: {e: [] for e in ENDPOINTS} for k in workers}
        for key, endpoint in interleaved(workers, list(ENDPOINTS), args.reps):
            seen[key][endpoint].append(batch(key, endpoint, args.batch))
        print(f"base {args.base} beside head: {args.reps} batches of {args.batch} HITs each")
        print(
            "| HIT | base CPU µs/req | head CPU µs/req | head/base CPU "
            "| per CPU-second head/base | Redis commands/req base / head |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        figures: dict[str, dict[str, float]] = {}
        for endpoint in ENDPOINTS:
            b, h = seen["base"][endpoint], seen["head"][endpoint]
            ratio = statistics.median(y / x for x, y in zip(b, h, strict=True))
            figures[endpoint] = {
                "base_us": round(statistics.median(b), 1),
                "head_us": round(statistics.median(h), 1),
                "cpu_ratio": round(ratio, 3),
                "per_cpu": round(1 / ratio, 3),
            }
            print(
                f"| {endpoint} | {figures[endpoint]['base_us']} | {figures[endpoint]['head_us']}"
                f" | {ratio:.3f} | {1 / ratio:.3f} | {per_request['base'][endpoint]:g} / "
                f"{per_request['head'][endpoint]:g} |"
            )
        for key in workers:
            pairs = zip(seen[key]["perfil"], seen[key]["statistics"], strict=True)
            ratio = statistics.median(p / s for p, s in pairs)
            figures[f"{key}_statistics_vs_perfil"] = {"per_cpu": round(ratio, 3)}
            print(f"{key}: statistics HIT per CPU-second / perfil's = {ratio:.3f}")
        print(json.dumps(figures))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:4])
    else:
        main()
