"""A statistics MISS as history grows 10x by a bulk import, this tree vs commit fdfee28.

    .venv/bin/python bench/historia.py [--base 100000] [--extra 900000] [--reps 3]
        [--contra COMMIT]

TIMEZONE=UTC. One private PostgreSQL and Redis, one database at head:
`seed-demo --pedidos BASE --meses 12` then VACUUM ANALYZE (phase "base"), then
`seed-demo --pedidos EXTRA --meses 120` on top (usuarios EXTRA/10, productos
EXTRA/200), measured right after the import with no VACUUM or ANALYZE
("import"), and again after `VACUUM ANALYZE` ("vacuum").

In each phase the MISS of ventas, usuarios and reporte (a full request through
the Flask test client after the entry was invalidated; median) is measured by
this tree's code and by the code of commit fdfee28 (or `--contra COMMIT`, e.g.
main's, for a before/after; `git archive`, run with PYTHONPATH on it) on the same database, rounds interleaved. The deltas are folded
first (`estadisticas_plegar()`), so the old code, which reads the rollup tables
alone, sees the same figures; its reads are the reads of fdfee28.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from miss import miss_app  # bench/miss.py, beside this file

PROJECT = Path(__file__).resolve().parents[1]
BASE_COMMIT = "fdfee28"
ENDPOINTS = {
    "ventas": "estadisticas_ventas",
    "usuarios": "estadisticas_usuarios",
    "reporte": "reporte_general",
}
GROWTH_TARGET = 1.5
COST_TARGET = 1.1


def medir(url: str, redis_url: str, reps: int) -> dict[str, list[float]]:
    """MISS seconds per endpoint, with whichever electro_isla is first on sys.path."""
    from electro_isla.cache import cache_manager
    from electro_isla.extensions import db

    with tempfile.TemporaryDirectory() as logdir:
        app, headers = miss_app(
            url, redis_url, prefix=f"hist{os.getpid()}", log_dir=logdir, timezone="UTC"
        )
        client = app.test_client()
        out: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        for _ in range(reps):
            for endpoint, name in ENDPOINTS.items():
                url_ = f"/api/admin/estadisticas/{endpoint}/"
                client.get(url_, headers=headers)
                with app.app_context():
                    cache_manager.invalidate(names=[name])
                started = time.perf_counter()
                response = client.get(url_, headers=headers)
                out[endpoint].append(time.perf_counter() - started)
                assert response.headers["X-Cache"] == "MISS", response.headers
        with app.app_context():
            db.engine.dispose()
    return out


def _in_subprocess(tree: Path, url: str, redis_url: str, reps: int) -> dict[str, list[float]]:
    done = subprocess.run(
        [sys.executable, __file__, "--medir", url, redis_url, str(reps)],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring with {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--extra", type=int, default=900_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contra", default=BASE_COMMIT, help="the code to compare with")
    args = parser.parse_args()
    import flask_migrate
    from estadisticas import bench_app, database, servers
    from sqlalchemy import text

    from electro_isla.extensions import db
    from electro_isla.usuarios.models import Usuario
    from electro_isla_testing.trees import exported

    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with (
        servers() as (admin, redis_url),
        tempfile.TemporaryDirectory() as logdir,
        exported(args.contra) as old,
        database(admin, "bench_historia", False) as (url, _),
    ):
        trees = {"this tree": PROJECT, args.contra: old}
        app = bench_app(url, redis_url, logdir, "UTC")
        with app.app_context():
            flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])

        def seed(pedidos: int, meses: int) -> float:
            started = time.perf_counter()
            seed_args = ["seed-demo", "--pedidos", str(pedidos), "--meses", str(meses)]
            seed_args += ["--usuarios", str(pedidos // 10), "--productos", str(pedidos // 200)]
            result = app.test_cli_runner().invoke(args=[*seed_args, "--seed", "42"])
            if result.exit_code != 0:
                raise SystemExit(f"seed-demo failed: {result.output}\n{result.exception!r}")
            return time.perf_counter() - started

        def vacuum() -> None:
            with app.app_context(), db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))

        def phase(name: str) -> None:
            with app.app_context():
                db.session.execute(text("SELECT estadisticas_plegar()"))
                db.session.commit()
                db.session.remove()
            seen: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
            for r in range(args.rounds):
                for label in trees if r % 2 == 0 else reversed(list(trees)):
                    got = _in_subprocess(trees[label], url, redis_url, args.reps)
                    for endpoint, times in got.items():
                        seen[label].setdefault(endpoint, []).extend(times)
            results[name] = seen
            print(
                f"# {name}: "
                + "; ".join(
                    f"{e} "
                    + " / ".join(f"{statistics.median(seen[t][e]) * 1000:.1f}" for t in trees)
                    for e in ENDPOINTS
                )
                + f" ms (this tree / {args.contra}); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )

        print(f"# base seeded in {seed(args.base, 12):.0f} s", flush=True)
        vacuum()
        with app.app_context():
            admin_user = Usuario(username="bench-admin", email="bench@x.test", rol="admin")
            admin_user.set_password("bench-password")
            db.session.add(admin_user)
            db.session.commit()
            db.session.remove()
        phase("base")
        print(f"# +{args.extra:,} over 120 months imported in {seed(args.extra, 120):.0f} s")
        phase("import")
        vacuum()
        phase("vacuum")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    report(results, list(trees))


def report(results: dict, trees: list[str]) -> None:
    def med(phase: str, tree: str, endpoint: str) -> float:
        return statistics.median(results[phase][tree][endpoint]) * 1000

    new, old = trees
    print(
        f"\n| endpoint | code | MISS base | after import | after VACUUM "
        f"| import / base (<= {GROWTH_TARGET}) | vacuum / base (<= {GROWTH_TARGET}) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for e in ENDPOINTS:
        for t in trees:
            b, i, v = (med(p, t, e) for p in ("base", "import", "vacuum"))
            print(
                f"| {e} | {t} | {b:.1f} ms | {i:.1f} ms | {v:.1f} ms | {i / b:.2f} | {v / b:.2f} |"
            )
    print(f"\nMISS this tree / {old} (target <= {COST_TARGET}):")
    for e in ENDPOINTS:
        print(f"  {e}: " + ", ".join(f"{p} {med(p, new, e) / med(p, old, e):.2f}" for p in results))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--medir":
        print(json.dumps(medir(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        main()
