"""The load side of bench/live.py: orders, polling dashboards, throughput, CPU, latency.

Everything here runs in the bench's own process; the watchers run in a process
of their own (electro_isla_testing/watchers.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests
from cache_hit import children, cpu_seconds

from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.live import STATS, token_headers
from electro_isla_testing.servers import PostgresServer, RedisServer


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
