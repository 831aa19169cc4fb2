"""Seeding, orders and an event-stream reader for the live statistics tests and bench."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla.extensions import db as _db
from electro_isla_testing.factories import ProductoFactory, UsuarioFactory, auth_headers
from electro_isla_testing.gunicorn import SECRET_KEY

STATS = ("ventas", "usuarios", "productos", "reporte")


@dataclass
class Site:
    base: str
    database_url: str
    producto_ids: list[int]
    admin_id: int
    admin: dict[str, str]
    cliente: dict[str, str]
    trabajador_ids: list[int]

    def headers_for(self, usuario_id: int) -> dict[str, str]:
        return token_headers(self.database_url, usuario_id)

    def stat(
        self, stat: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        return requests.get(
            f"{self.base}/api/admin/estadisticas/{stat}/",
            headers={**(headers or self.admin), **kw.pop("extra", {})},
            timeout=kw.pop("timeout", 10),
            **kw,
        )

    def admin_patch(self, path: str, body: dict[str, Any]) -> None:
        requests.patch(
            f"{self.base}{path}", json=body, headers=self.admin, timeout=30
        ).raise_for_status()

    def set_stock(self, producto_id: int, stock: int) -> None:
        """A change to productos only, through the admin API."""
        self.admin_patch(f"/api/admin/productos/{producto_id}/", {"stock": stock})

    def set_rol(self, usuario_id: int, rol: str) -> None:
        """A promotion or demotion, through the admin API."""
        self.admin_patch(f"/api/admin/users/{usuario_id}/", {"rol": rol})

    def order(self, cantidad: int = 1, headers: dict[str, str] | None = None) -> dict:
        r = requests.post(
            f"{self.base}/api/pedidos/",
            json={
                "items": [{"producto_id": self.producto_ids[0], "cantidad": cantidad}],
                "metodo_pago": "efectivo",
                "direccion_entrega": "Calle Live 1",
                "telefono": "555-0100",
            },
            headers=headers or self.cliente,
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()


def _app(database_url: str):  # noqa: ANN202
    return create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None, "SECRET_KEY": SECRET_KEY},
    )


def token_headers(database_url: str, usuario_id: int) -> dict[str, str]:
    app = _app(database_url)
    headers = auth_headers(app, usuario_id)
    with app.app_context():
        _db.engine.dispose()
    return headers


def seed(database_url: str, base: str, productos: int = 3) -> Site:
    app = _app(database_url)
    with app.app_context():
        ids = [ProductoFactory(stock=100000, precio="10.00").id for _ in range(productos)]
        admin_id = UsuarioFactory(rol="admin").id
        cliente_id = UsuarioFactory(rol="cliente").id
        # One per test that needs streams of its own (4 per usuario, shared by the package).
        trabajador_ids = [UsuarioFactory(rol="trabajador").id for _ in range(9)]
        admin, cliente = auth_headers(app, admin_id), auth_headers(app, cliente_id)
        _db.session.remove()
        _db.engine.dispose()
    return Site(base, database_url, ids, admin_id, admin, cliente, trabajador_ids)


@dataclass
class Event:
    name: str
    id: str | None
    data: Any
    at: float


@dataclass
class StreamReader:
    """`GET …/stream/` read in a thread; events land in a queue with their arrival time."""

    base: str
    headers: dict[str, str]
    last_event_id: str | None = None
    events: queue.Queue = field(default_factory=queue.Queue)
    comments: int = 0
    ended: threading.Event = field(default_factory=threading.Event)
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    # `retry:` hints received; `clean_end`: the server ended the body properly (last
    # chunk sent), not a connection cut mid-stream.
    retries: list[int] = field(default_factory=list)
    clean_end: bool = False
    ended_at: float | None = None

    def start(self, timeout: float = 10) -> StreamReader:
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(timeout), "stream did not open"
        return self

    def _run(self) -> None:
        url = urlsplit(self.base)
        headers = {**self.headers, "Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        self._conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            self._conn.request("GET", "/api/admin/estadisticas/stream/", headers=headers)
            r = self._conn.getresponse()
            self.status = r.status
            self.response_headers = dict(r.getheaders())
            self._opened.set()
            if r.status != 200:
                return
            name, ident, data = None, None, []
            for raw in self._lines(r):
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("id:"):
                    ident = line[3:].strip()
                elif line.startswith("retry:"):
                    self.retries.append(int(line[6:].strip()))
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    event = Event(name, ident, json.loads("".join(data)), time.monotonic())
                    self.events.put(event)
                    name, ident, data = None, None, []
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            pass
        finally:
            self.ended_at = time.monotonic()
            self._opened.set()
            self.ended.set()

    def _lines(self, r: http.client.HTTPResponse) -> Iterator[bytes]:
        """The body's lines as they arrive; `clean_end` once the last chunk came.

        Not `readline()`: on a chunked body it returns b"" for a connection cut
        mid-stream as for a proper end (it swallows the IncompleteRead), where
        `read1()` raises it.
        """
        pending = b""
        while True:
            data = r.read1(65536)
            if not data:
                self.clean_end = True
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"

    @property
    def local_port(self) -> int:
        """This end's port: which worker holds the other end (GunicornServer.worker_serving)."""
        return self._conn.sock.getsockname()[1]

    def next(self, timeout: float = 5) -> Event:
        return self.events.get(timeout=timeout)

    def take(self, n: int, timeout: float = 5) -> list[Event]:
        return [self.next(timeout) for _ in range(n)]

    def until(self, predicate, timeout: float) -> Event:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching event in time")
            try:
                event = self.next(left)
            except queue.Empty as exc:
                raise AssertionError("no matching event in time") from exc
            if predicate(event):
                return event

    def close(self) -> None:
        """Hang up now (the server notices on its next write)."""
        conn = getattr(self, "_conn", None)
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(timeout=5)
