"""Many live-statistics watchers on one selectors loop, in a process of their own.

bench/live.py measures how soon a change reaches 200 watchers. With one thread
per watcher (requests for the waits, http.client for the streams) and every
event parsed as JSON, the client used about a third of the two cores it shared
with the server it measured, and its own queueing became part of the latency.
Here one loop in a child process holds every connection on raw sockets, parses
only what the measurement needs (status, ETag, `Preference-Applied`; the body
of `reporte` only) and stamps each arrival with CLOCK_MONOTONIC, which the
parent's clock shares, so arrivals compare with the parent's order log.

    watchers = Watchers(base)            # starts the child
    refused = watchers.connect(specs)    # every wait holds a tag, every stream its 4 events
    watchers.mark()                      # from now: sightings and CPU
    seen, immediate, cpu = watchers.report()
    watchers.close()
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import selectors
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

STREAM_PATH = "/api/admin/estadisticas/stream/"
POLL_AFTER_IMMEDIATE = 3.0  # a wait answered at once: poll again as a dashboard would
FIRST_EVENTS = 4


@dataclass(frozen=True)
class Spec:
    """One watcher: a conditional wait on `stat`, or a stream (`stat` None)."""

    token: str  # the Authorization header's value
    stat: str | None = None
    wait: int = 10  # Prefer: wait=N of a conditional wait


def _total(body: bytes) -> int:
    return json.loads(body)["resumen"]["total_pedidos"]


@dataclass
class _Watcher:
    spec: Spec
    host: str
    port: int
    sock: socket.socket | None = None
    buf: bytes = b""
    head: dict[str, str] | None = None
    status: int = 0
    seen: list[tuple[float, int]] = field(default_factory=list)
    ready: bool = False

    def open(self) -> socket.socket:
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf, self.head = b"", None
        return self.sock

    def _headers(self) -> bool:
        """Parse the status line and headers once they are in; False until then."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4 :]
        self.status = int(lines[0].split(" ", 2)[1])
        self.head = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.head[name.strip().lower()] = value.strip()
        return True


@dataclass
class _Wait(_Watcher):
    etag: str | None = None
    immediate: int = 0

    def request(self) -> bytes:
        spec = self.spec
        lines = [
            f"GET /api/admin/estadisticas/{spec.stat}/ HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Authorization: {spec.token}",
        ]
        if self.etag:
            lines += [f"If-None-Match: {self.etag}", f"Prefer: wait={spec.wait}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def feed(self, at: float) -> float | None:
        """A whole answer read: None to ask again now, or when to ask (after a poll pause)."""
        if self.head is None and not self._headers():
            return -1.0
        assert self.head is not None
        length = 0 if self.status == 304 else int(self.head.get("content-length", "0"))
        if len(self.buf) < length:
            return -1.0
        body, self.buf, head = self.buf[:length], self.buf[length:], self.head
        self.head = None
        if self.status == 200:
            self.etag = head["etag"]
            self.ready = True
            if self.spec.stat == "reporte":
                self.seen.append((at, _total(body)))
        elif self.status == 304 and "preference-applied" not in head:
            self.immediate += 1
            return at + POLL_AFTER_IMMEDIATE
        return None


@dataclass
class _Stream(_Watcher):
    chunked: bool = False
    chunk_left: int = 0  # bytes of the current chunk still to read (+2 for its CRLF)
    text: bytes = b""
    events: int = 0

    def request(self) -> bytes:
        return (
            f"GET {STREAM_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: {self.spec.token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()

    def _dechunk(self) -> None:
        """Move the chunks' data from `buf` to `text` (HTTP/1.1 chunked coding)."""
        while self.buf:
            if self.chunk_left == 0:
                line_end = self.buf.find(b"\r\n")
                if line_end < 0:
                    return
                line = self.buf[:line_end].split(b";", 1)[0].strip()
                self.buf = self.buf[line_end + 2 :]
                if not line:
                    continue  # the CRLF ending the previous chunk
                self.chunk_left = int(line, 16) + 2
                if self.chunk_left == 2:
                    return  # the last chunk: the server ended the stream
            part = self.buf[: self.chunk_left]
            self.buf = self.buf[len(part) :]
            self.chunk_left -= len(part)
            self.text += part[:-2] if self.chunk_left == 0 else part

    def feed(self, at: float) -> float | None:
        if self.head is None:
            if not self._headers():
                return -1.0
            assert self.head is not None
            self.chunked = "chunked" in self.head.get("transfer-encoding", "").lower()
            if self.status != 200:
                self.ready = True
                return -1.0
        if self.chunked:
            self._dechunk()
        else:
            self.text, self.buf = self.text + self.buf, b""
        *blocks, self.text = self.text.replace(b"\r\n", b"\n").split(b"\n\n")
        for block in blocks:
            if b"\ndata:" not in b"\n" + block:
                continue  # a comment or the retry hint
            self.events += 1
            if block.startswith(b"event: reporte\n") or block.startswith(b"event:reporte\n"):
                data = block[block.index(b"\ndata:") + 6 :]
                self.seen.append((at, _total(data)))
        if self.events >= FIRST_EVENTS:
            self.ready = True
        return -1.0


class _Loop:
    """The child: every watcher on one selector, commands from the parent on a pipe."""

    def __init__(self, base: str, pipe: Connection) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", int(url.port or 80)
        self.pipe = pipe
        self.sel = selectors.DefaultSelector()
        self.sel.register(pipe.fileno(), selectors.EVENT_READ, None)
        self.watchers: list[_Wait | _Stream] = []
        self.timers: list[tuple[float, int]] = []
        self.cpu_mark = time.process_time()
        self.running = True

    def _send(self, w: _Wait | _Stream) -> None:
        try:
            assert w.sock is not None
            w.sock.sendall(w.request())
        except OSError:
            self._reopen(w)

    def _reopen(self, w: _Wait | _Stream) -> None:
        if w.sock is not None:
            self.sel.unregister(w.sock)
            w.sock.close()
        self.sel.register(w.open(), selectors.EVENT_READ, w)
        w.sock.sendall(w.request())  # type: ignore[union-attr]

    def connect(self, specs: list[Spec]) -> int:
        for spec in specs:
            kind = _Stream if spec.stat is None else _Wait
            w = kind(spec, self.host, self.port)
            self.watchers.append(w)
            self.sel.register(w.open(), selectors.EVENT_READ, w)
            self._send(w)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(w.ready for w in self.watchers):
            self.step(0.1)
        return sum(1 for w in self.watchers if isinstance(w, _Stream) and w.status != 200)

    def step(self, timeout: float) -> None:
        now = time.monotonic()
        if self.timers:
            timeout = max(0.0, min(timeout, self.timers[0][0] - now))
        for key, _ in self.sel.select(timeout):
            w = key.data
            if w is None:
                self.command()
                continue
            try:
                data = w.sock.recv(262144)
            except OSError:
                data = b""
            at = time.monotonic()
            if not data:
                if isinstance(w, _Stream) and w.status != 200:
                    self.sel.unregister(w.sock)  # refused (429): stays refused
                    w.sock.close()
                    w.sock = None
                else:
                    self._reopen(w)  # keep-alive closed by the server: ask again
                continue
            w.buf += data
            due = w.feed(at)
            if due is None:
                self._send(w)
            elif due >= 0:
                heapq.heappush(self.timers, (due, self.watchers.index(w)))
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, i = heapq.heappop(self.timers)
            self._send(self.watchers[i])

    def command(self) -> None:
        name, arg = self.pipe.recv()
        if name == "connect":
            self.pipe.send(self.connect(arg))
        elif name == "mark":
            for w in self.watchers:
                w.seen.clear()
            self.cpu_mark = time.process_time()
            self.pipe.send(None)
        elif name == "report":
            self.pipe.send(
                (
                    [w.seen for w in self.watchers if w.spec.stat in (None, "reporte")],
                    sum(w.immediate for w in self.watchers if isinstance(w, _Wait)),
                    time.process_time() - self.cpu_mark,
                )
            )
        elif name == "close":
            for w in self.watchers:
                if w.sock is not None:
                    self.sel.unregister(w.sock)
                    w.sock.close()
            self.watchers.clear()
            self.timers.clear()
            self.pipe.send(None)
            self.running = False

    def run(self) -> None:
        while self.running:
            self.step(1.0)


def _child(base: str, pipe: Connection) -> None:
    _Loop(base, pipe).run()


class Watchers:
    """The parent's handle on the child process holding the watchers."""

    def __init__(self, base: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=_child, args=(base, theirs), daemon=True)
        self.process.start()

    def _ask(self, name: str, arg: Any = None) -> Any:
        self.pipe.send((name, arg))
        return self.pipe.recv()

    def connect(self, specs: list[Spec]) -> int:
        """Open every watcher; returns how many streams were refused."""
        return self._ask("connect", specs)

    def mark(self) -> None:
        self._ask("mark")

    def report(self) -> tuple[list[list[tuple[float, int]]], int, float]:
        """Per watcher of reporte: (arrival, total_pedidos); waits answered at once; CPU s."""
        return self._ask("report")

    def close(self) -> None:
        self._ask("close")
        self.process.join(timeout=10)
