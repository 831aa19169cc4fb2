"""Drill harness: a real gunicorn on private servers, concurrent traffic, and the audit.

Shared by the outage drills (tests/drills) and the load benchmarks (bench/): the
processes are started here, so a test may kill, pause or stop them at will.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.servers import PostgresServer, free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRET_KEY = "drill-signing-key-long-enough-for-hs256-0123456789"


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database on `server` with the models' schema; returns its SQLAlchemy URL."""
    admin = server.url("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    import flask_migrate

    from electro_isla import create_app
    from electro_isla.config import TestConfig
    from electro_isla.extensions import db

    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None})
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])
        db.engine.dispose()
    return url


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg", "postgresql")


class GunicornServer:
    """`gunicorn wsgi:app` as a child process, configured only from the environment."""

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        *,
        workers: int | None = 2,
        threads: int | None = 4,
        prefix: str | None = None,
        extra_env: dict[str, str] | None = None,
        use_project_config: bool = False,
    ) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="ei-gunicorn-"))
        self.prefix = prefix or f"drill{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "CACHE_KEY_PREFIX": self.prefix,
            "LOG_DIR": str(self.tmp / "logs"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prom"),
            "PYTHONUNBUFFERED": "1",
        }
        (self.tmp / "prom").mkdir()
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.env.update(extra_env or {})
        self.workers = workers
        self.threads = threads
        self.use_project_config = use_project_config
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> GunicornServer:
        config = PROJECT_DIR / "gunicorn.conf.py"
        if not (self.use_project_config and config.exists()):
            config = self.tmp / "gunicorn.conf.py"
            config.write_text("# empty: every setting comes from the command line\n")
        cmd = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(config)]
        # None: the config file (or gunicorn) decides.
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        cmd += [
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "wsgi:app",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=PROJECT_DIR, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(p) for p in out.split()]

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def errors_logged(self) -> str:
        """The error lines and tracebacks the workers logged, for assertion messages."""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            keep = [
                ln
                for ln in lines
                if "ERROR" in ln or "Traceback" in ln or "Error:" in ln or ln.startswith("  ")
            ]
            return "\n".join(keep[-60:])
        return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._log.close()


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no HTTP answer (connection error, timeout)
    started: float
    elapsed: float
    token: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class Traffic:
    """Worker threads running `actions` until stopped; every answer is recorded."""

    def __init__(self, base_url: str, timeout: float = 10) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.stop_event = threading.Event()
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def request(
        self,
        session: requests.Session,
        kind: str,
        method: str,
        path: str,
        token: str | None = None,
        **kwargs: Any,
    ) -> Outcome:
        started = time.monotonic()
        try:
            resp = session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            outcome = Outcome(
                kind, None, started, time.monotonic() - started, token, error=repr(exc)
            )
        else:
            try:
                body = resp.json()
            except ValueError:
                body = {"_not_json": resp.text[:200]}
            outcome = Outcome(
                kind,
                resp.status_code,
                started,
                time.monotonic() - started,
                token,
                body,
                dict(resp.headers),
            )
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def spawn(self, loop: Callable[[requests.Session, random.Random], None], n: int) -> None:
        for i in range(n):

            def run(seed: int = i) -> None:
                rng = random.Random(seed)
                with requests.Session() as session:
                    while not self.stop_event.is_set():
                        loop(session, rng)

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def statuses(self, kind: str | None = None) -> Counter:
        return Counter(o.status for o in self.outcomes if kind is None or o.kind == kind)


def shopper(traffic: Traffic, producto_ids: list[int]) -> Callable:
    def loop(session: requests.Session, rng: random.Random) -> None:
        if rng.random() < 0.5:
            traffic.request(session, "lista", "GET", f"/api/productos/?page={rng.randint(1, 3)}")
        else:
            traffic.request(
                session, "detalle", "GET", f"/api/productos/{rng.choice(producto_ids)}/"
            )
        time.sleep(0.01)

    return loop


def buyer(traffic: Traffic, producto_ids: list[int], headers: list[dict[str, str]]) -> Callable:
    """Orders of 1–2 products, 1–3 units each; `notas` carries a token to find it later."""

    def loop(session: requests.Session, rng: random.Random) -> None:
        token = uuid.uuid4().hex
        items = [
            {"producto_id": pid, "cantidad": rng.randint(1, 3)}
            for pid in rng.sample(producto_ids, rng.randint(1, 2))
        ]
        traffic.request(
            session,
            "pedido",
            "POST",
            "/api/pedidos/",
            token,
            json={
                "items": items,
                "metodo_pago": "efectivo",
                "direccion_entrega": "Calle Drill 1",
                "telefono": "555-0100",
                "notas": token,
            },
            headers=rng.choice(headers),
        )
        time.sleep(0.02)

    return loop


def is_error_envelope(outcome: Outcome) -> bool:
    body = outcome.body
    return (
        isinstance(body, dict)
        and body.get("code") == outcome.status
        and isinstance(body.get("status"), str)
        and isinstance(body.get("message"), str)
    )


def audit_orders(database_url: str, traffic: Traffic, initial_stock: dict[int, int]) -> None:
    """Nothing lost, nothing invented: 201s are stored with their stock taken, refusals are not."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        stored = {
            notas: pid
            for pid, notas in conn.execute("SELECT id, notas FROM pedidos WHERE notas <> ''")
        }
        stock = dict(conn.execute("SELECT id, stock FROM productos"))
        sold = {
            pid: int(total)
            for pid, total in conn.execute(
                "SELECT d.producto_id, SUM(d.cantidad) FROM detalles_pedido d "
                "JOIN pedidos p ON p.id = d.pedido_id WHERE p.estado <> 'cancelado' "
                "GROUP BY d.producto_id"
            )
        }
        detalles = {}
        for pedido_id, producto_id, cantidad, precio, subtotal in conn.execute(
            "SELECT pedido_id, producto_id, cantidad, precio_unitario, subtotal FROM detalles_pedido"
        ):
            detalles.setdefault(pedido_id, {})[producto_id] = cantidad
            assert Decimal(subtotal) == Decimal(precio) * cantidad

    orders = [o for o in traffic.outcomes if o.kind == "pedido"]
    accepted = [o for o in orders if o.status == 201]
    refused = [o for o in orders if o.status is not None and o.status != 201]
    for o in accepted:
        assert o.token in stored, f"order answered 201 is not in the database: {o.body}"
        assert stored[o.token] == o.body["id"]
        sent = {d["producto_id"]: d["cantidad"] for d in o.body["detalles"]}
        assert detalles[o.body["id"]] == sent
    for o in refused:
        assert o.token not in stored, f"order refused with {o.status} was stored: {o.body}"
    unknown = {o.token for o in orders if o.status is None}
    assert set(stored) <= {o.token for o in accepted} | unknown, "an order nobody placed appeared"
    for pid, initial in initial_stock.items():
        assert stock[pid] >= 0
        assert stock[pid] + sold.get(pid, 0) == initial, f"producto {pid}: stock does not add up"


@contextlib.contextmanager
def running(traffic: Traffic) -> Iterator[Traffic]:
    try:
        yield traffic
    finally:
        traffic.stop()
