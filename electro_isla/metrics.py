"""Prometheus metrics: HTTP requests, cache events, database pool.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it before workers
fork), every worker writes its samples to files there and `/metrics`, answered
by any worker, sums them all. prometheus-client picks its storage when it is
first imported, so the variable must be set before that: this module reads it
at import time for the same reason.

The metric objects are process-wide (one registry per process); each app only
adds its request hooks, so tests that build many apps count into the same
metrics and assert on differences.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from typing import Any

from flask import Flask, Response, g, request
from flask_smorest import abort
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

from electro_isla.config_values import Misconfigured
from electro_isla.extensions import db
from electro_isla.metrics_files import files_locked

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "electro_isla_http_requests_total",
    "HTTP requests answered, by URL rule (not raw path), method and status.",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "electro_isla_http_request_duration_seconds",
    "Time from the first before_request hook to the response, by URL rule and method.",
    ["endpoint", "method"],
)
CACHE_HITS = Counter("electro_isla_cache_hits_total", "Cache hits by cached name.", ["name"])
CACHE_MISSES = Counter("electro_isla_cache_misses_total", "Cache misses by cached name.", ["name"])
CACHE_FETCHES = Counter(
    "electro_isla_cache_fetches_total", "Values really computed (fetch ran), by name.", ["name"]
)
CACHE_INVALIDATIONS = Counter(
    "electro_isla_cache_invalidations_total", "Generation bumps by cached name.", ["name"]
)
CACHE_ERRORS = Counter(
    "electro_isla_cache_errors_total",
    "Cache server failures, by cached name or operation (ping, stats, invalidate).",
    ["name"],
)
CACHE_BYPASSES = Counter(
    "electro_isla_cache_bypasses_total",
    "Reads answered from the database because the cache was unusable, by name.",
    ["name"],
)
CACHE_FETCH_SECONDS = Histogram(
    "electro_isla_cache_fetch_duration_seconds", "Time spent computing a cached value.", ["name"]
)
# livesum: the sum over live workers; a dead worker's connections are gone with it.
DB_POOL_CHECKED_OUT = Gauge(
    "electro_isla_db_pool_checked_out",
    "Database connections currently checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "electro_isla_db_pool_size",
    "Configured pool size (without overflow), summed over live workers.",
    multiprocess_mode="livesum",
)


# -- database pool ---------------------------------------------------------------

_checked_out: set[int] = set()
_checked_out_lock = threading.Lock()


def _on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
    with _checked_out_lock:
        _checked_out.add(id(record))
        DB_POOL_CHECKED_OUT.set(len(_checked_out))


def _on_checkin(_dbapi: Any, record: Any) -> None:
    # A set, not a counter: a checkin without a checkout (failed pre-ping) cannot
    # drive the gauge below zero.
    with _checked_out_lock:
        _checked_out.discard(id(record))
        DB_POOL_CHECKED_OUT.set(len(_checked_out))


def watch_pool(engine: Engine) -> None:
    if not event.contains(engine, "checkout", _on_checkout):
        event.listen(engine, "checkout", _on_checkout)
        event.listen(engine, "checkin", _on_checkin)
    size = getattr(engine.pool, "size", None)
    if callable(size):
        DB_POOL_SIZE.set(size())


# -- HTTP ------------------------------------------------------------------------


def _labels() -> tuple[str, str]:
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    method = request.method if request.method in HTTP_METHODS else "OTHER"
    return rule, method


def register_request_metrics(app: Flask) -> None:
    def start_timer() -> None:
        g.metrics_started = time.perf_counter()

    # First of all before_request hooks, so the latency includes them.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)

    @app.after_request
    def count_request(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        endpoint, method = _labels()
        HTTP_REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        if started is not None:
            HTTP_LATENCY.labels(endpoint, method).observe(time.perf_counter() - started)
        return response


# -- exposition ------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(raw: str) -> list[Network]:
    """METRICS_ALLOW: comma-separated IPs or CIDRs. A typo fails at start, loudly."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise Misconfigured(f"METRICS_ALLOW: {item!r} is not an IP address or CIDR") from exc
    return networks


def client_allowed(remote_addr: str | None, allow: list[Network]) -> bool:
    if not allow:
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in allow)


def render_metrics() -> bytes:
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        # Not while the master folds an exited worker's files into the archives.
        with files_locked(MULTIPROC_DIR, exclusive=False):
            return generate_latest(registry)
    return generate_latest(REGISTRY)


def register_metrics(app: Flask) -> None:
    """Request hooks, pool events and the `/metrics` endpoint (cache events: cache/stats.py)."""
    allow = parse_allow(app.config.get("METRICS_ALLOW", "") or "")
    register_request_metrics(app)
    with app.app_context():
        watch_pool(db.engine)

    @app.get("/metrics")
    def metrics():  # noqa: ANN202
        # The direct peer's address: gunicorn does not rewrite REMOTE_ADDR from
        # X-Forwarded-For, so a client cannot spoof its way in with a header.
        if not client_allowed(request.remote_addr, allow):
            abort(403, message="Metrics are not available from this address.")
        return Response(render_metrics(), content_type=CONTENT_TYPE_LATEST)
