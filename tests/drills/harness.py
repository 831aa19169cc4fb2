"""Drill traffic and the audit: concurrent shoppers and buyers against a real gunicorn
(electro_isla_testing.gunicorn), then nothing lost, nothing invented."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import requests
from flask import Flask

from electro_isla_testing.databases import libpq_url
from electro_isla_testing.factories import ProductoFactory, UsuarioFactory, auth_headers


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


@dataclass
class Shop:
    """What an outage drill sells: stock per producto (the first one is the drill's
    target) and three clientes' headers."""

    initial: dict[int, int]
    clientes: list[dict[str, str]]


def open_shop(app: Flask, precio: str) -> Shop:
    """Three productos that cannot run out (a fast machine must still see orders succeed
    after the outage) and one that does, so refusals are audited too; three clientes."""
    with app.app_context():
        productos = [
            ProductoFactory(stock=stock, precio=precio) for stock in (100_000, 100_000, 100_000, 5)
        ]
        initial = {p.id: p.stock for p in productos}
        cliente_ids = [UsuarioFactory(rol="cliente").id for _ in range(3)]
    return Shop(initial, [auth_headers(app, uid) for uid in cliente_ids])


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
