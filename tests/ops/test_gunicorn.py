"""Real gunicorn, 3 workers, on the test PostgreSQL and Redis.

Proves what only several processes can show: a write through one worker is
seen by reads through the others, `/metrics` sums every worker's counters, and
SIGTERM lets in-flight requests finish before gunicorn exits 0.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import redis as redis_lib
import requests
from prometheus_client.parser import text_string_to_metric_families

from electro_isla.config import TestConfig
from electro_isla_testing.factories import ProductoFactory, UsuarioFactory
from electro_isla_testing.gunicorn import GunicornServer
from tests.conftest import unique_prefix
from tests.helpers import auth_headers

WORKERS = 3


def serve(database_url: str, redis_url: str) -> GunicornServer:
    """`gunicorn -c gunicorn.conf.py` as production runs it: settings from the environment
    only (none inherited but PATH, HOME and the locale), its access log on stdout."""
    server = GunicornServer(
        database_url,
        redis_url,
        workers=WORKERS,
        threads=4,
        app="tests.ops.gunicorn_app:app",
        settings_via_env=True,
        inherit_env=False,
        access_log=True,
        wait_for_workers=True,
        ready_path="/readyz",
        extra_env={
            "SECRET_KEY": TestConfig.SECRET_KEY,
            "CACHE_KEY_PREFIX": unique_prefix(),
            "GUNICORN_GRACEFUL_TIMEOUT": "20",
            "TEST_INFLIGHT_KEY": f"{unique_prefix()}:inflight",
            "LOG_FORMAT": "json",
        },
    )
    return server.start(timeout=90)


@pytest.fixture(scope="module")
def server(_schema: str, redis_url: str) -> Iterator[GunicornServer]:
    gunicorn = serve(_schema, redis_url)
    yield gunicorn
    # A no-op when the SIGTERM test already stopped it.
    assert gunicorn.stop(timeout=60) == 0, gunicorn.log_tail()


def get(url: str, headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
    """One request on its own connection, so the kernel may hand it to any worker."""
    headers = {**(headers or {}), "Connection": "close"}
    return requests.get(url, headers=headers, timeout=30, **kwargs)


def seed(make_app, precio: str = "100.00") -> tuple[list[int], dict[str, str]]:
    app = make_app()
    with app.app_context():
        ids = [ProductoFactory(precio=Decimal(precio), stock=5).id for _ in range(3)]
        admin_id = UsuarioFactory(rol="admin").id
    return ids, auth_headers(app, admin_id)


def _never_answered(exc: requests.ConnectionError) -> str:
    """Classify a connection that got no response at all while the server stops.

    "refused": the listener is closed. "reset": the connection was still in the
    kernel's accept queue when the last process closed the listener, so no
    worker ever read it (gunicorn stops accepting at SIGTERM; a proxy in front
    should stop routing first). A response cut after it started would be a
    ChunkedEncodingError, not a ConnectionError, and fails the test.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, ConnectionResetError) or "RemoteDisconnected" in repr(cause):
            return "reset"
        nxt = cause.__cause__ or cause.__context__
        if nxt is None and cause.args and isinstance(cause.args[0], BaseException):
            nxt = cause.args[0]
        cause = nxt if nxt is not cause else None
    return f"failed: {exc!r}"


def metric_total(text: str, metric: str, /, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_writes_through_one_worker_are_seen_by_reads_through_all(server, make_app):
    ids, admin = seed(make_app)
    target = ids[1]
    detail = f"{server.url}/api/productos/{target}/"
    pids: set[str] = set()
    statuses: list[str] = []
    with ThreadPoolExecutor(6) as pool:
        # Warm the entry (and every worker) with the old price first.
        warm = list(pool.map(lambda _: get(detail), range(12)))
        assert {Decimal(str(r.json()["precio"])) for r in warm} == {Decimal("100.00")}
        for round_no in range(5):
            precio = Decimal("150.00") + round_no * Decimal("12.35")
            write = requests.patch(
                f"{server.url}/api/admin/productos/{target}/",
                json={"precio": float(precio)},
                headers={**admin, "Connection": "close"},
                timeout=30,
            )
            assert write.status_code == 200, write.text
            pids.add(write.headers["X-Worker-Pid"])
            reads = list(pool.map(lambda _: get(detail), range(30)))
            for read in reads:
                assert read.status_code == 200
                assert Decimal(str(read.json()["precio"])) == precio, (round_no, read.json())
                pids.add(read.headers["X-Worker-Pid"])
                statuses.append(read.headers.get("X-Cache", ""))
            listing = get(f"{server.url}/api/productos/", params={"page_size": 100}).json()
            listed = {p["id"]: Decimal(str(p["precio"])) for p in listing["results"]}
            assert listed[target] == precio
    # The reads were served by several processes and mostly from the cache.
    assert len(pids) >= 2, pids
    assert pids <= {str(p) for p in server.booted_pids()}
    assert statuses.count("HIT") >= 100, statuses


def test_metrics_sum_the_counters_of_every_worker(server, make_app):
    ids, _ = seed(make_app)
    before = get(f"{server.url}/metrics").text
    sent = 0
    pids: set[str] = set()
    with ThreadPoolExecutor(6) as pool:
        urls = [f"{server.url}/api/productos/{ids[n % 3]}/" for n in range(60)]
        urls += [f"{server.url}/healthz"] * 30
        for response in pool.map(get, urls):
            assert response.status_code == 200
            pids.add(response.headers["X-Worker-Pid"])
            sent += 1
    assert len(pids) >= 2, "traffic must reach several workers for this test to mean anything"

    totals = []
    for _ in range(6):  # whichever worker answers, it reports every worker's figures
        after = get(f"{server.url}/metrics").text
        total = metric_total(after, "electro_isla_http_requests_total") - metric_total(
            before, "electro_isla_http_requests_total"
        )
        totals.append(total)
        detail_hits = metric_total(
            after,
            "electro_isla_http_requests_total",
            endpoint="/api/productos/<int:producto_id>/",
            status="200",
        ) - metric_total(
            before,
            "electro_isla_http_requests_total",
            endpoint="/api/productos/<int:producto_id>/",
            status="200",
        )
        assert detail_hits == 60
    assert min(totals) >= sent, totals
    assert totals == sorted(totals)  # never goes back: no worker's share is missing

    text = after
    assert metric_total(text, "electro_isla_cache_hits_total", name="producto") > 0
    assert metric_total(text, "electro_isla_cache_misses_total", name="producto") >= 3
    assert (
        metric_total(
            text,
            "electro_isla_http_request_duration_seconds_count",
            endpoint="/api/productos/<int:producto_id>/",
        )
        >= 60
    )
    # livesum over live workers: 3 workers x the production pool size (5).
    assert metric_total(text, "electro_isla_db_pool_size") == WORKERS * 5
    assert metric_total(text, "electro_isla_db_pool_checked_out") >= 0


def test_access_log_has_request_id_and_duration_and_no_token(server):
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.bm90LWEtcmVhbC1zaWduYXR1cmU"
    response = get(
        f"{server.url}/healthz",
        params={"access_token": secret},
        headers={"X-Request-ID": "trace-gunicorn-1"},
    )
    assert response.headers["X-Request-ID"] == "trace-gunicorn-1"
    deadline = time.monotonic() + 5
    while "trace-gunicorn-1" not in server.access_path.read_text():
        assert time.monotonic() < deadline, server.access_path.read_text()[-2000:]
        time.sleep(0.05)
    lines = [
        json.loads(line) for line in server.access_path.read_text().splitlines() if line.strip()
    ]
    mine = [e for e in lines if "request_id=trace-gunicorn-1" in e["message"]]
    assert len(mine) == 1
    assert mine[0]["request_id"] == "trace-gunicorn-1"  # the JSON field too, not "-"
    assert re.search(
        r'"GET /healthz\?access_token=\[REDACTED\] HTTP/1.1" 200 .* duration_ms=\d+',
        mine[0]["message"],
    )
    assert secret not in server.access_path.read_text()
    assert secret not in server.log_path.read_text()


def raw_request(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send `request` as it is (requests would refuse to) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"GET /api/productos/?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /api/productos/?page=\xd9\xa1 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
)
def test_gunicorns_own_refusals_are_the_json_envelope(server, request_bytes, code):
    """API.md: every error is JSON, never an HTML page; gunicorn's were HTML."""
    status, headers, body = raw_request(server.url, request_bytes)
    assert status.startswith(f"HTTP/1.1 {code} "), status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    envelope = json.loads(body)
    assert envelope["code"] == code and envelope["status"] and envelope["message"]


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(server, make_app):
    """Runs last in this file: it stops the module's server."""
    ids, _ = seed(make_app)
    gunicorn = server
    counter = redis_lib.Redis.from_url(gunicorn.env["REDIS_URL"])
    key = gunicorn.env["TEST_INFLIGHT_KEY"]
    in_flight = 8
    try:
        with ThreadPoolExecutor(in_flight + 4) as pool:
            slow = [
                pool.submit(get, f"{gunicorn.url}/__test__/slow", params={"seconds": 2})
                for _ in range(in_flight)
            ]
            deadline = time.monotonic() + 20
            while int(counter.get(key) or 0) < in_flight:
                assert time.monotonic() < deadline, "slow requests never started"
                time.sleep(0.02)

            # Keep ordinary traffic going while the server shuts down.
            stop_traffic = time.monotonic() + 3

            def traffic() -> list[str]:
                outcomes = []
                while time.monotonic() < stop_traffic:
                    try:
                        r = get(f"{gunicorn.url}/api/productos/{ids[0]}/")
                        outcomes.append(str(r.status_code))
                    except requests.ConnectionError as exc:
                        outcomes.append(_never_answered(exc))
                        time.sleep(0.05)
                return outcomes

            background = [pool.submit(traffic) for _ in range(3)]
            time.sleep(0.3)
            sent_at = time.monotonic()
            gunicorn.proc.send_signal(signal.SIGTERM)

            for future in slow:
                response = future.result(timeout=30)
                assert response.status_code == 200
                assert response.json()["slept"] == 2
            outcomes = [o for f in background for o in f.result(timeout=30)]
        code = gunicorn.proc.wait(timeout=30)
        took = time.monotonic() - sent_at
    finally:
        if gunicorn.proc.poll() is None:
            gunicorn.stop(signal.SIGKILL)
    assert code == 0, gunicorn.log_path.read_text()
    assert took < 20  # finished with the requests, not at graceful_timeout
    assert "200" in outcomes
    # Whatever got an answer got a good one: no 5xx, no response cut halfway.
    assert set(outcomes) <= {"200", "refused", "reset"}, outcomes
    print("outcomes:", {o: outcomes.count(o) for o in set(outcomes)})
    errors = gunicorn.log_path.read_text()
    assert "Traceback" not in errors
    assert "WORKER TIMEOUT" not in errors
