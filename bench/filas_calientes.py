"""Orders/s with and without the statistics triggers, before and after 0007 (no hot row).

    .venv/bin/python bench/filas_calientes.py [--seconds 8] [--rounds 2] [--antes REV] \
        [--clients 1,16,64] [--pedidos 20000] [--no-api] [--durable]

One private PostgreSQL (electro_isla_testing/servers.PostgresServer) and Redis. Two databases
seeded alike (`seed-demo --pedidos N --usuarios N/10 --productos 200 --meses 12
--seed 42`, then VACUUM ANALYZE):

- `antes`: migrated to the revision before 0007, the rollups of commit fdfee28 (0002's
  triggers upsert the rollup rows, hot rows spread over 16 pid slots);
- `despues`: migrated to head (0007: the triggers insert deltas, folded later; 0017:
  an order runs no statistics trigger, its rows are its deltas, taken by a fold).

SQL level: pgbench runs bench/pgbench/pedido.sql (a confirmado pedido + one line per
transaction, random usuario, producto and metodo) for `--seconds` per cell, at each
client count, with the rollup triggers enabled and disabled (`ALTER TABLE pedidos,
detalles_pedido ENABLE/DISABLE TRIGGER USER`; from 0017 on, "without" also drops the
index of the rows' `alta_xact` and makes its default a constant), cells interleaved
round by round; the median tps per cell. During every cell pg_stat_activity is sampled every 100 ms: the
share of pgbench sessions waiting on a heavyweight lock (`wait_event_type = 'Lock'`,
mostly `transactionid`: another transaction's row lock) and on a lightweight one
(`LWLock`: a shared buffer's content lock, the lock table's partitions). The
server's CPU per order (every PostgreSQL process, from /proc, over the cell) is
printed beside: on a CPU-bound server the tps ratio is about its inverse, and it
moves far less with the machine's other load. Beside the with-trigger tps from the
middle to the top client count, the same step without the triggers: what the server
alone does when the clients outnumber the cores. API level (unless --no-api):
bench/escrituras.py's 40 concurrent buyers through the Flask app, orders/s with and
without the triggers.
The 1-minute load average is printed with each cell (the machine is shared).

The private PostgreSQL runs as the test suite's does (fsync, synchronous_commit and
full_page_writes off: CPU is all an order costs) unless `--durable`, which keeps
PostgreSQL's defaults (every COMMIT waits for its WAL on disk), as production runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import escrituras  # bench/escrituras.py, beside this file
import flask_migrate
import psycopg
from estadisticas import bench_app, database, servers
from sqlalchemy import text

from electro_isla.extensions import db
from electro_isla_testing.servers import pg_bindir

PROJECT = Path(__file__).resolve().parents[1]

SCRIPT = PROJECT / "bench" / "pgbench" / "pedido.sql"
SCHEMAS = {"antes": "0006_refresh_families", "despues": "head"}
RATIO_TARGET = 0.8
TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")
PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def seed(app: Any, revision: str, pedidos: int) -> dict[str, int]:
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"], revision=revision)
    args = ["seed-demo", "--pedidos", str(pedidos), "--usuarios", str(max(60, pedidos // 10))]
    args += ["--productos", "200", "--meses", "12", "--seed", "42"]
    result = app.test_cli_runner().invoke(args=args)
    if result.exit_code != 0:
        raise SystemExit(f"seed-demo failed: {result.output}\n{result.exception!r}")
    with app.app_context():
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        bounds = db.session.execute(
            text(
                "SELECT (SELECT min(id) FROM usuarios), (SELECT max(id) FROM usuarios), "
                "(SELECT min(id) FROM productos), (SELECT max(id) FROM productos)"
            )
        ).one()
        db.session.remove()
    return dict(zip(("umin", "umax", "pmin", "pmax"), bounds, strict=True))


def triggers(conninfo: str, enabled: bool) -> None:
    """The rollup machinery on or off: the triggers and, from migration 0017 on, the
    column each row carries for the fold (its index dropped, its default a constant),
    so "without" is the plain schema at any revision."""
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tagged = conn.execute("SELECT to_regclass('estadisticas_horizonte') IS NOT NULL")
        tagged = tagged.fetchone()[0]
        for table in ("pedidos", "detalles_pedido"):
            conn.execute(f"ALTER TABLE {table} {verb} TRIGGER USER")
            if not tagged:
                continue
            if enabled:
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS ix_{table}_alta_xact ON {table} (alta_xact)"
                )
                conn.execute(
                    f"ALTER TABLE {table} ALTER COLUMN alta_xact SET DEFAULT pg_current_xact_id()"
                )
            else:
                conn.execute(f"DROP INDEX IF EXISTS ix_{table}_alta_xact")
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN alta_xact SET DEFAULT '0'")


class LockSampler:
    """Share of pgbench sessions waiting on a heavyweight lock, and on a lightweight one
    (LWLock: a shared buffer's or the lock table's, say), sampled every 100 ms."""

    QUERY = (
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
        "count(*) FILTER (WHERE wait_event = 'transactionid'), "
        "count(*) FILTER (WHERE wait_event_type = 'LWLock'), count(*) "
        "FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'pgbench'"
    )

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.samples: list[tuple[int, int, int, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stop.wait(0.1):
                locks, xid, lwlocks, total = conn.execute(self.QUERY).fetchone()
                if total:
                    self.samples.append((locks, xid, lwlocks, total))

    def __enter__(self) -> LockSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def share(self) -> tuple[float, float, float]:
        """(mean share waiting on any Lock, on transactionid, on any LWLock)."""
        if not self.samples:
            return 0.0, 0.0, 0.0
        return (
            statistics.mean(lk / t for lk, _x, _lw, t in self.samples),
            statistics.mean(x / t for _lk, x, _lw, t in self.samples),
            statistics.mean(lw / t for _lk, _x, lw, t in self.samples),
        )


class ServerCpu:
    """CPU seconds of every process of the PostgreSQL server, read from /proc.

    The postmaster is the parent of any backend; a backend that has exited is in the
    postmaster's children's times (it reaps them), a live one in its own. Per order,
    this is what the triggers add to the server's work, whatever else the machine
    runs: on a CPU-bound server, tps with / without is about its inverse."""

    def __init__(self, conninfo: str) -> None:
        # Read while connected: a backend exits with its connection (a run printed nan
        # for every cell when /proc lost that race).
        with psycopg.connect(conninfo, autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            try:
                self.postmaster: int | None = self.ticks(backend)[0]
            except OSError:
                self.postmaster = None  # a server on another host: its processes are not here

    @staticmethod
    def ticks(pid: int) -> tuple[int, int, int]:
        """(parent pid, own utime + stime, reaped children's) in clock ticks."""
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])

    def seconds(self) -> float:
        """NaN when the server's processes are not on this machine."""
        if self.postmaster is None:
            return float("nan")
        _parent, own, reaped = self.ticks(self.postmaster)
        total = own + reaped
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent, ticks, _reaped = self.ticks(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile: its time is in `reaped` or lost (a few ticks)
            if parent == self.postmaster:
                total += ticks
        return total / TICKS


def pgbench(
    admin: Any, dbname: str, clients: int, seconds: int, bounds: dict[str, int]
) -> tuple[float, int]:
    cmd = [str(pg_bindir() / "pgbench"), "-n", "-h", admin.host, "-p", str(admin.port)]
    cmd += ["-U", admin.username, "-c", str(clients), "-j", str(min(clients, 2))]
    cmd += ["-T", str(seconds), "-f", str(SCRIPT)]
    cmd += [f"-D{k}={v}" for k, v in bounds.items()]
    done = subprocess.run(
        [*cmd, dbname], capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    found, processed = TPS.search(done.stdout), PROCESSED.search(done.stdout)
    if done.returncode != 0 or not found or not processed:
        raise SystemExit(f"pgbench failed: {done.stdout}\n{done.stderr}")
    return float(found.group(1)), int(processed.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--pedidos", type=int, default=20_000)
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="PostgreSQL's default durability (fsync, synchronous_commit on) instead of none",
    )
    parser.add_argument(
        "--antes",
        default=SCHEMAS["antes"],
        help="the revision `antes` is migrated to (e.g. 0010_totales_por_clave to set one "
        "trigger change beside head)",
    )
    args = parser.parse_args()
    revisions = {**SCHEMAS, "antes": args.antes}
    clients = [int(c) for c in args.clients.split(",")]
    # (schema, clients, enabled) -> [(tps, lock share, xid share, load, server CPU µs/order,
    # LWLock share)]
    cells: dict[tuple[str, int, bool], list[tuple[float, ...]]] = {}
    api: dict[str, dict[str, Any]] = {}
    with (
        servers(durable=args.durable) as (admin, redis_url),
        tempfile.TemporaryDirectory() as logdir,
        database(admin, "bench_hot_antes", False) as (url_antes, _),
        database(admin, "bench_hot_despues", False) as (url_despues, _),
    ):
        if os.environ.get("BENCH_DATABASE_URL"):
            print("# given PostgreSQL (BENCH_DATABASE_URL): its own durability settings")
        else:
            durability = "PostgreSQL defaults (fsync on)" if args.durable else "fsync off"
            print(f"# private PostgreSQL: {durability}")
        urls = {"antes": url_antes, "despues": url_despues}
        apps = {s: bench_app(u, redis_url, logdir, "UTC") for s, u in urls.items()}
        bounds = {}
        for schema, revision in revisions.items():
            started = time.perf_counter()
            bounds[schema] = seed(apps[schema], revision, args.pedidos)
            print(f"# {schema}: {revision}, seeded in {time.perf_counter() - started:.1f} s")
        conninfo = {
            s: admin.set(database=f"bench_hot_{s}", drivername="postgresql").render_as_string(
                hide_password=False
            )
            for s in SCHEMAS
        }
        cpu = ServerCpu(conninfo["despues"])
        for r in range(args.rounds):
            for schema in SCHEMAS:
                for n in clients:
                    for enabled in (True, False) if r % 2 == 0 else (False, True):
                        triggers(conninfo[schema], enabled)
                        before = cpu.seconds()
                        with LockSampler(conninfo[schema]) as sampler:
                            tps, orders = pgbench(
                                admin, f"bench_hot_{schema}", n, args.seconds, bounds[schema]
                            )
                        time.sleep(0.3)  # the postmaster reaps pgbench's backends
                        per_order = (cpu.seconds() - before) / orders * 1e6
                        load = os.getloadavg()[0]
                        locks, xid, lwlocks = sampler.share()
                        cells.setdefault((schema, n, enabled), []).append(
                            (tps, locks, xid, load, per_order, lwlocks)
                        )
                        print(
                            f"  round {r} {schema:<7} {n:>2} clients "
                            f"{'with' if enabled else 'without':<7} {tps:8.1f} tps  "
                            f"waiting on Lock {locks:5.1%} (transactionid {xid:5.1%}), "
                            f"on LWLock {lwlocks:5.1%}  "
                            f"server CPU {per_order:4.0f} µs/order  load {load:.1f}",
                            flush=True,
                        )
            triggers(conninfo["antes"], True)
            triggers(conninfo["despues"], True)
        if not args.no_api:
            for schema in SCHEMAS:
                # The current code's rebuild knows only the head schema.
                api[schema] = escrituras.measure(apps[schema], rebuild=schema == "despues")
                w = api[schema]
                print(
                    f"  API {schema}: 40 buyers {w['rate_with']:.1f} vs "
                    f"{w['rate_without']:.1f} orders/s; statuses {w['statuses']}; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        for app in apps.values():
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    report(cells, clients, api)


def report(cells: dict, clients: list[int], api: dict[str, dict[str, Any]]) -> None:
    def med(schema: str, n: int, enabled: bool, i: int) -> float:
        return statistics.median(c[i] for c in cells[(schema, n, enabled)])

    print(
        "\n| schema | clients | with triggers, tps | without, tps | with / without "
        "| sessions waiting on Lock, with (transactionid) | same, without "
        "| on LWLock, with / without | server CPU µs/order, with / without | load avg |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for schema in SCHEMAS:
        for n in clients:
            w, wo = med(schema, n, True, 0), med(schema, n, False, 0)
            loads = [c[3] for e in (True, False) for c in cells[(schema, n, e)]]
            print(
                f"| {schema} | {n} | {w:.0f} | {wo:.0f} | {w / wo:.2f} "
                f"| {med(schema, n, True, 1):.0%} ({med(schema, n, True, 2):.0%}) "
                f"| {med(schema, n, False, 1):.0%} "
                f"| {med(schema, n, True, 5):.1%} / {med(schema, n, False, 5):.1%} "
                f"| {med(schema, n, True, 4):.0f} / {med(schema, n, False, 4):.0f} "
                f"= {med(schema, n, True, 4) / med(schema, n, False, 4):.2f} "
                f"| {min(loads):.1f}–{max(loads):.1f} |"
            )
    top, mid = max(clients), sorted(clients)[-2] if len(clients) > 1 else max(clients)
    for schema in SCHEMAS:
        ratio = med(schema, top, True, 0) / med(schema, top, False, 0)
        rising = med(schema, top, True, 0) / med(schema, mid, True, 0)
        # The same step without the triggers: what the server alone does from mid to top.
        alone = med(schema, top, False, 0) / med(schema, mid, False, 0)
        extra = med(schema, top, True, 4) / med(schema, top, False, 4)
        print(
            f"{schema}: with / without at {top} clients {ratio:.2f} "
            f"({'met' if ratio >= RATIO_TARGET else 'MISSED'}, target >= {RATIO_TARGET}); "
            f"with-trigger tps {top} / {mid} clients {rising:.2f} "
            f"({'met' if rising >= 1 else 'MISSED'}, target >= 1; without the triggers "
            f"{alone:.2f}); "
            f"server CPU per order with / without {extra:.2f} (its inverse {1 / extra:.2f})"
        )
    for schema, w in api.items():
        print(
            f"API {schema}: 40 buyers {w['rate_with']:.1f} / {w['rate_without']:.1f} orders/s "
            f"= {w['rate_with'] / w['rate_without']:.2f} (target >= {RATIO_TARGET}); "
            f"POST p50 {w['p50_with'] * 1000:.2f} / {w['p50_without'] * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
