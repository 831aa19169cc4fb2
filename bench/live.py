"""Benchmark: live statistics (waits + streams) vs dashboards polling every 3 s.

    .venv/bin/python bench/live.py [--seconds 60] [--watchers 200] [--dashboards 20]

One command, one run, everything side by side. Starts private PostgreSQL and
Redis servers and gunicorn with the project's gunicorn.conf.py (3 gthread
workers, LIVE_MAX_WAITERS=120 each), seeds 12 products and 50 staff usuarios,
then:

1. quiet polling: `--dashboards` dashboards GET the four statistics every 3 s, no orders;
2. busy polling: the same under 5 orders/s — latency p95 busy vs quiet, and server CPU;
3. live: `--watchers` watchers (half conditional waits spread over the four
   statistics, half event streams) under the same 5 orders/s — commit-to-client
   latency of each order (from the POST's answer, i.e. just after its COMMIT, to
   the moment a watcher holds a `reporte` counting it), fetches per change per
   statistic (cache stats `fetches` / orders), and server CPU per minute;
4. `GET /api/productos/7/` throughput with the watchers connected vs none;
5. a statistics HIT (`reporte`) vs `GET /api/perfil/` throughput.

Server CPU = user+system time of the gunicorn workers, redis-server and the
PostgreSQL processes alive at both ends of the phase (a backend that exits
mid-phase is not counted; the pool keeps them alive).
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import requests

from electro_isla_testing.databases import create_database
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.live import STATS, StreamReader, seed, token_headers
from electro_isla_testing.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


class Meter:
    """CPU of the server side over a phase."""

    def __init__(self, server: GunicornServer, redis: RedisServer, pg: PostgresServer) -> None:
        self.server, self.redis, self.pg = server, redis, pg

    def pids(self) -> list[int]:
        postmaster = int((Path(self.pg.datadir) / "postmaster.pid").read_text().split()[0])
        assert self.redis.proc is not None
        return [
            *self.server.worker_pids(),
            self.redis.proc.pid,
            postmaster,
            *children(postmaster),
        ]

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = {p: cpu_seconds([p]) for p in self.pids()}

    def per_minute(self) -> float:
        elapsed = time.monotonic() - self.t0
        used = sum(cpu_seconds([p]) - c for p, c in self.before.items() if p in self.pids())
        return used * 60 / elapsed


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


# -- load ---------------------------------------------------------------------------------------
def orders(site, seconds: float, rate: float, log: list) -> threading.Thread:  # noqa: ANN001
    """`rate` orders a second for `seconds`; log (sent, answered) per order, in order."""

    def run() -> None:
        with requests.Session() as s:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < seconds:
                due = start + n / rate
                time.sleep(max(0.0, due - time.monotonic()))
                sent = time.monotonic()
                r = s.post(
                    f"{site.base}/api/pedidos/",
                    json={
                        "items": [{"producto_id": site.producto_ids[n % 5], "cantidad": 1}],
                        "metodo_pago": "efectivo",
                        "direccion_entrega": "Calle Bench 1",
                        "telefono": "555-0100",
                    },
                    headers=site.cliente,
                    timeout=10,
                )
                assert r.status_code == 201, r.text
                log.append((sent, time.monotonic()))
                n += 1

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def dashboards(site, n: int, seconds: float, latencies: list) -> list[threading.Thread]:  # noqa: ANN001
    def run(i: int) -> None:
        with requests.Session() as s:
            start = time.monotonic() + (i * 3.0 / n)
            time.sleep(max(0.0, start - time.monotonic()))
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                tick = time.monotonic()
                for stat in STATS:
                    t0 = time.monotonic()
                    r = s.get(
                        f"{site.base}/api/admin/estadisticas/{stat}/",
                        headers=site.admin,
                        timeout=10,
                    )
                    assert r.status_code == 200
                    latencies.append(time.monotonic() - t0)
                time.sleep(max(0.0, tick + 3.0 - time.monotonic()))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


class Waiter(threading.Thread):
    """A conditional-wait loop on one statistic; records (arrival, total_pedidos) for reporte."""

    def __init__(self, site, stat: str, headers: dict[str, str]) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.site, self.stat, self.headers = site, stat, headers
        self.seen: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.immediate = 0
        self.wait = 10  # short enough that a stopped waiter leaves within 10 s

    def run(self) -> None:
        etag = None
        with requests.Session() as s:
            while not self.stop.is_set():
                headers = dict(self.headers)
                if etag:
                    headers.update({"If-None-Match": etag, "Prefer": f"wait={self.wait}"})
                try:
                    r = s.get(
                        f"{self.site.base}/api/admin/estadisticas/{self.stat}/",
                        headers=headers,
                        timeout=40,
                    )
                except requests.RequestException:
                    continue
                at = time.monotonic()
                if r.status_code == 304 and "Preference-Applied" not in r.headers:
                    self.immediate += 1  # not held (limit reached): poll as a dashboard would
                    time.sleep(3)
                if r.status_code == 200:
                    etag = r.headers["ETag"]
                    if self.stat == "reporte":
                        self.seen.append((at, r.json()["resumen"]["total_pedidos"]))


def connect(site, staff: list, n: int) -> tuple[list, list]:  # noqa: ANN001
    """n watchers: half conditional waits (half of them on reporte), half streams."""
    half = n // 2
    waiters = [
        Waiter(site, "reporte" if i % 2 == 0 else STATS[i % 4], staff[i % len(staff)])
        for i in range(half)
    ]
    for w in waiters:
        w.start()
    readers = [
        StreamReader(site.base, staff[i % len(staff)]).start(timeout=30) for i in range(n - half)
    ]
    time.sleep(3)  # every watcher holds the current figures
    return waiters, readers


def disconnect(waiters: list, readers: list) -> None:
    for w in waiters:
        w.stop.set()
    for r in readers:
        r.close()
    for w in waiters:
        w.join(timeout=40)
    time.sleep(1)


def throughput(url: str, headers: dict[str, str], seconds: float, threads: int = 8) -> float:
    count = [0] * threads
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                r = s.get(url, headers=headers, timeout=10)
                assert r.status_code == 200
                count[i] += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / seconds


def cache_fetches(site) -> dict[str, int]:  # noqa: ANN001
    stats = requests.get(f"{site.base}/api/admin/cache/stats/", headers=site.admin, timeout=10)
    families = stats.json()["families"]
    names = {
        "ventas": "estadisticas_ventas",
        "usuarios": "estadisticas_usuarios",
        "productos": "estadisticas_productos",
        "reporte": "reporte_general",
    }
    return {stat: families[name]["fetches"] for stat, name in names.items()}


def latencies_of(order_log: list, base_total: int, sightings: list[list[tuple[float, int]]]):  # noqa: ANN201
    """Per (watcher, order): first arrival counting the order, minus the POST's answer time."""
    from_answer, from_sent, missed = [], [], 0
    for seen in sightings:
        for k, (sent, answered) in enumerate(order_log, start=1):
            first = next((at for at, total in seen if total >= base_total + k), None)
            if first is None:
                missed += 1
                continue
            from_answer.append(max(0.0, first - answered))
            from_sent.append(first - sent)
    return from_answer, from_sent, missed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--dashboards", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--throughput-seconds", type=float, default=10)
    args = parser.parse_args()

    pg = PostgresServer()
    pg.start()
    redis = RedisServer().start()
    server = None
    try:
        url = create_database(pg, "bench_live")
        server = GunicornServer(url, redis.url, workers=3, threads=None, use_project_config=True)
        server.env.update(
            LIVE_MAX_WAITERS="120",
            GUNICORN_MAX_REQUESTS="0",
            GUNICORN_ACCESS_LOG="/dev/null",
            GUNICORN_LOG_LEVEL="warning",
        )
        server.start()
        site = seed(url, server.url, productos=12)
        staff = staff_headers(url, 50)
        meter = Meter(server, redis, pg)
        report: dict[str, object] = {}

        # 1-2. polling, quiet then busy
        for phase in ("quiet", "busy"):
            lat: list[float] = []
            log: list = []
            meter.start()
            threads = dashboards(site, args.dashboards, args.seconds, lat)
            if phase == "busy":
                threads.append(orders(site, args.seconds, args.rate, log))
            for t in threads:
                t.join()
            report[f"poll_{phase}_cpu"] = meter.per_minute()
            report[f"poll_{phase}_p95"] = pct(lat, 0.95)
            report[f"poll_{phase}_p50"] = pct(lat, 0.5)
            report[f"poll_{phase}_requests"] = len(lat)

        detail = f"{site.base}/api/productos/{site.producto_ids[6]}/"
        without, with_ = [throughput(detail, {}, args.throughput_seconds)], []

        # 3. live watchers under orders
        waiters, readers = connect(site, staff, args.watchers)
        refused = sum(1 for r in readers if r.status != 200)
        # 4. ordinary throughput with the watchers connected (vs none, measured above)
        with_.append(throughput(detail, {}, args.throughput_seconds))
        base_total = site.stat("reporte").json()["resumen"]["total_pedidos"]
        fetches_before = cache_fetches(site)
        log = []
        meter.start()
        client_cpu = time.process_time()
        orders(site, args.seconds, args.rate, log).join()
        time.sleep(2)
        report["live_cpu"] = meter.per_minute()
        report["live_client_cpu"] = (time.process_time() - client_cpu) * 60 / (args.seconds + 2)
        fetches_after = cache_fetches(site)
        sightings = [w.seen for w in waiters if w.stat == "reporte"]
        for r in readers:
            seen = []
            while True:
                try:
                    e = r.events.get_nowait()
                except queue.Empty:
                    break
                if e.name == "reporte":
                    seen.append((e.at, e.data["resumen"]["total_pedidos"]))
            sightings.append(seen)
        from_answer, from_sent, missed = latencies_of(log, base_total, sightings)
        report.update(
            orders=len(log),
            watchers_reporte=len(sightings),
            stream_refused=refused,
            wait_immediate=sum(w.immediate for w in waiters),
            lat_p50=pct(from_answer, 0.5),
            lat_p95=pct(from_answer, 0.95),
            lat_max=max(from_answer, default=float("nan")),
            lat_sent_p95=pct(from_sent, 0.95),
            missed=missed,
            fetches={s: (fetches_after[s] - fetches_before[s]) / max(1, len(log)) for s in STATS},
        )
        disconnect(waiters, readers)
        # A second round, so that drift on a shared machine hits both sides alike.
        without.append(throughput(detail, {}, args.throughput_seconds))
        waiters, readers = connect(site, staff, args.watchers)
        with_.append(throughput(detail, {}, args.throughput_seconds))
        disconnect(waiters, readers)
        report["detail_with"], report["detail_without"] = with_, without

        # 5. statistics HIT vs perfil
        hit = throughput(
            f"{site.base}/api/admin/estadisticas/reporte/", site.admin, args.throughput_seconds
        )
        perfil = throughput(f"{site.base}/api/perfil/", site.admin, args.throughput_seconds)
        report["stat_hit"], report["perfil"] = hit, perfil
        print_report(report, args)
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        pg.cleanup()


def staff_headers(url: str, n: int) -> list[dict[str, str]]:
    from electro_isla import create_app
    from electro_isla.config import TestConfig
    from electro_isla.extensions import db
    from electro_isla_testing.factories import UsuarioFactory
    from electro_isla_testing.gunicorn import SECRET_KEY

    app = create_app(
        TestConfig, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None, "SECRET_KEY": SECRET_KEY}
    )
    with app.app_context():
        ids = [UsuarioFactory(rol="trabajador").id for _ in range(n)]
        db.session.remove()
        db.engine.dispose()
    return [token_headers(url, i) for i in ids]


def print_report(r: dict, args: argparse.Namespace) -> None:  # noqa: ANN001
    print(f"\n== load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    print(
        f"== bench/live.py  seconds={args.seconds} watchers={args.watchers} "
        f"dashboards={args.dashboards} orders/s={args.rate}"
    )
    print(
        f"live: {r['orders']} orders, {r['watchers_reporte']} watchers holding reporte "
        f"(streams refused: {r['stream_refused']}, waits answered at once: {r['wait_immediate']})"
    )
    print(
        f"  commit-to-client latency (from the POST's answer) p50 {ms(r['lat_p50'])} ms, "
        f"p95 {ms(r['lat_p95'])} ms, max {ms(r['lat_max'])} ms  (target p95 <= 100 ms); "
        f"from the POST sent p95 {ms(r['lat_sent_p95'])} ms; missed {r['missed']}"
    )
    fetches = ", ".join(f"{s} {v:.2f}" for s, v in r["fetches"].items())
    print(f"  fetches per change per statistic: {fetches}  (target 1)")
    print(
        f"  server CPU per minute: live {r['live_cpu']:.1f} s vs {args.dashboards} dashboards "
        f"polling every 3 s {r['poll_busy_cpu']:.1f} s (quiet polling {r['poll_quiet_cpu']:.1f} s);"
        f" per client {r['live_cpu'] / args.watchers:.2f} vs "
        f"{r['poll_busy_cpu'] / args.dashboards:.2f} s; this client process used "
        f"{r['live_client_cpu']:.1f} s/min of the same 2 cores during the live phase"
    )
    with_, without = r["detail_with"], r["detail_without"]
    ratio = sum(with_) / sum(without)
    print(
        f"GET /api/productos/7/ req/s, {args.watchers} watchers connected / none, 2 rounds: "
        f"{' / '.join(f'{a:.0f}' for a in with_)} vs {' / '.join(f'{b:.0f}' for b in without)}"
        f" = {ratio:.2f}x  (target >= 0.9x)"
    )
    busy = r["poll_busy_p95"] / r["poll_quiet_p95"]
    print(
        f"polling mix: p95 busy {ms(r['poll_busy_p95'])} ms vs quiet {ms(r['poll_quiet_p95'])} ms"
        f" = {busy:.2f}x  (target <= 2x); p50 {ms(r['poll_busy_p50'])} vs "
        f"{ms(r['poll_quiet_p50'])} ms; {r['poll_busy_requests']} / {r['poll_quiet_requests']} GETs"
    )
    print(
        f"statistics HIT {r['stat_hit']:.0f} req/s vs GET /api/perfil/ {r['perfil']:.0f} req/s"
        f" = {r['stat_hit'] / r['perfil']:.2f}x  (target >= 0.95x)"
    )


if __name__ == "__main__":
    main()
