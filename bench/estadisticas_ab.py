"""Benchmark: a statistics MISS, a base commit's code beside this tree's, interleaved in one run.

    .venv/bin/python bench/estadisticas_ab.py [--base 3e70ac8] [--pedidos 100000] [--reps 60]

Starts a private PostgreSQL and Redis (electro_isla_testing/servers.py) and
runs two worker processes on the same virtualenv: `base` imports the code of the
commit given by --base (a `git archive` export in a temp dir), `head` this
working tree. Each tree has its own database, migrated by its own migrations and
seeded by its own `flask seed-demo` with the same arguments (then VACUUM
ANALYZE; bench/beside.py): the schema moves between commits (0008
replaced tables 3e70ac8 reads). Each has its own cache key prefix. For every rep and
every statistic, in a shuffled order, each worker invalidates the entry and
times one GET /api/admin/estadisticas/<name>/ through its test client (a MISS:
auth, rollup SQL, caching, rendering). Printed: median wall and CPU (the worker's
process time) milliseconds and head/base ratios. `--base` equal to `HEAD` gives
an A/A run: the noise floor of the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid

from miss import miss_app  # bench/miss.py, beside this file

NAMES = {
    "ventas": "estadisticas_ventas",
    "usuarios": "estadisticas_usuarios",
    "productos": "estadisticas_productos",
    "reporte": "reporte_general",
}


def worker(db_url: str, redis_url: str) -> None:
    """One tree's MISS on command: an endpoint per stdin line, 'wall cpu' seconds out.

    The tree's package comes first on the path through PYTHONPATH (set by main).
    """
    from electro_isla.cache import cache_manager

    app, headers = miss_app(
        db_url,
        redis_url,
        prefix=f"ab{uuid.uuid4().hex[:6]}",
        log_dir=tempfile.mkdtemp(prefix="bench-ab-"),
        timezone="America/Havana",
    )
    client = app.test_client()
    for name in NAMES:  # warm connections and the profile
        assert client.get(f"/api/admin/estadisticas/{name}/", headers=headers).status_code == 200
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        with app.app_context():
            cache_manager.invalidate(names=[NAMES[name]])
        wall, cpu = time.perf_counter(), time.process_time()
        response = client.get(f"/api/admin/estadisticas/{name}/", headers=headers)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert response.status_code == 200 and response.headers["X-Cache"] == "MISS"
        print(f"{wall} {cpu}", flush=True)


def seed_args(pedidos: int) -> list[str]:
    """`flask seed-demo` for `pedidos` pedidos: the same arguments for both trees."""
    args = ["seed-demo", "--pedidos", str(pedidos), "--usuarios", str(max(60, pedidos // 10))]
    return args + ["--productos", str(max(80, pedidos // 200)), "--meses", "12", "--seed", "42"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="3e70ac8")
    parser.add_argument("--pedidos", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=60)
    args = parser.parse_args()

    # Imported here, not at the top: the workers run this file with a base tree
    # first on the path, and need none of it.
    from beside import interleaved, workers_beside

    seed = seed_args(args.pedidos)
    with workers_beside(__file__, args.base, "bench_ab", seed, vacuum=True) as (workers, _):
        seen = {k: {n: ([], []) for n in NAMES} for k in workers}
        for key, name in interleaved(workers, list(NAMES), args.reps):
            wall, cpu = map(float, workers[key].ask(name))
            seen[key][name][0].append(wall)
            seen[key][name][1].append(cpu)
    print(f"base {args.base} beside head, {args.reps} MISSes each, interleaved")
    print(
        "| statistic | base MISS ms (wall / CPU) | head MISS ms (wall / CPU) "
        "| head/base wall | head/base CPU |"
    )
    print("|---|---:|---:|---:|---:|")
    ratios = {}
    for name in NAMES:
        b = [statistics.median(x) * 1000 for x in seen["base"][name]]
        h = [statistics.median(x) * 1000 for x in seen["head"][name]]
        ratios[name] = {"wall": round(h[0] / b[0], 3), "cpu": round(h[1] / b[1], 3)}
        print(
            f"| {name} | {b[0]:.2f} / {b[1]:.2f} | {h[0]:.2f} / {h[1]:.2f} "
            f"| {ratios[name]['wall']:.3f} | {ratios[name]['cpu']:.3f} |"
        )
    print(json.dumps({"ratios": ratios}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:4])
    else:
        main()
