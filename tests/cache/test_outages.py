"""Outages of a Redis server the test owns: killed, restarted, paused across a write."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from electro_isla.cache import signals
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from tests.cache.support import add_probe, add_producto, manager_of

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")

RESET = 0.5  # circuit breaker interval used here (production: 2 s)
CHECK_MS = 250  # how soon any process drains the outbox (production's default)


@pytest.fixture
def outage_app(make_app, own_redis, tmp_path):
    def build():
        return add_probe(
            make_app(
                REDIS_URL=own_redis.url,
                REDIS_SOCKET_TIMEOUT=0.2,
                CACHE_CIRCUIT_RESET_SECONDS=RESET,
                CACHE_PENDING_CHECK_MS=CHECK_MS,
            )
        )

    return build


def get(client, producto_id: int):
    started = time.monotonic()
    response = client.get(f"/_probe/productos/{producto_id}")
    return response, time.monotonic() - started


def set_precio(app, producto_id: int, precio: str) -> None:
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal(precio)
        _db.session.commit()


def test_killed_redis_means_bypass_fast_few_attempts_then_caching_resumes(outage_app, own_redis):
    app = outage_app()
    client = app.test_client()
    producto_id = add_producto(app, "10.00")
    assert get(client, producto_id)[0].headers["X-Cache"] == "MISS"
    assert get(client, producto_id)[0].headers["X-Cache"] == "HIT"

    errors = []
    own_redis.kill()
    with signals.cache_error.connected_to(lambda *a, **kw: errors.append(kw["key"]), app):
        started = time.monotonic()
        timings = []
        for _ in range(30):
            response, seconds = get(client, producto_id)
            assert response.status_code == 200
            assert response.headers["X-Cache"] == "BYPASS"
            assert response.json["precio"] == 10.0
            timings.append(seconds)
        set_precio(app, producto_id, "20.00")  # a write during the outage
        response, _ = get(client, producto_id)
        assert response.json["precio"] == 20.0  # answered from the database
        total = time.monotonic() - started
    assert max(timings) < 1.0, timings  # refused connections: milliseconds, even on a busy box
    assert sorted(timings)[len(timings) // 2] < 0.1, timings
    # Circuit breaker: a refused connection trips it; then one probe per interval at most.
    assert 1 <= len(errors) <= 2 + int(total / RESET), (errors, total)

    own_redis.restart()  # same address, empty (no persistence)
    time.sleep(RESET + 0.05)
    response, _ = get(client, producto_id)
    assert (response.headers["X-Cache"], response.json["precio"]) == ("MISS", 20.0)
    assert get(client, producto_id)[0].headers["X-Cache"] == "HIT"
    assert manager_of(app).pending_invalidations == 0


def test_paused_redis_across_a_write_nothing_written_before_it_is_served(outage_app, own_redis):
    """SIGSTOP, write, SIGCONT: neither worker serves the entry the write outdated.

    Worker A notices the outage (its breaker opens), so its invalidation is
    never even sent: it is genuinely lost to Redis. Worker B never talks to
    Redis during the pause, so nothing tells it the cache is out of date
    except the outbox row A's transaction wrote.
    """
    app_a, app_b = outage_app(), outage_app()
    client_a, client_b = app_a.test_client(), app_b.test_client()
    producto_id = add_producto(app_a, "10.00")
    assert get(client_b, producto_id)[0].headers["X-Cache"] == "MISS"
    assert get(client_a, producto_id)[0].headers["X-Cache"] == "HIT"
    gen_key = manager_of(app_a).gen_key("producto", producto_id)
    import redis

    raw = redis.Redis.from_url(own_redis.url)
    gen_before = raw.get(gen_key)

    own_redis.pause()
    try:
        response, seconds = get(client_a, producto_id)  # A hits the hung server once
        assert response.headers["X-Cache"] == "BYPASS"
        assert seconds < 1.0
        set_precio(app_a, producto_id, "20.00")  # commits; invalidation cannot be applied
        assert manager_of(app_a).pending_invalidations >= 1
        response, seconds = get(client_a, producto_id)
        assert (response.headers["X-Cache"], response.json["precio"]) == ("BYPASS", 20.0)
        assert seconds < 1.0
    finally:
        own_redis.resume()

    assert raw.get(gen_key) == gen_before  # the invalidation really was lost
    time.sleep(CHECK_MS / 1000)  # the documented bound on how soon B looks
    # B, which saw nothing, asks first: it applies A's outbox row before trusting the cache.
    response, _ = get(client_b, producto_id)
    assert response.json["precio"] == 20.0
    assert response.headers["X-Cache"] == "MISS"
    assert raw.get(gen_key) != gen_before
    assert get(client_b, producto_id)[0].json["precio"] == 20.0
    time.sleep(RESET + 0.05)
    response, _ = get(client_a, producto_id)
    assert response.json["precio"] == 20.0
    assert response.headers["X-Cache"] == "HIT"
    assert manager_of(app_a).pending_invalidations == 0


def test_without_the_outbox_a_second_worker_would_serve_stale(outage_app, own_redis, monkeypatch):
    """Control for the test above: what the outbox row buys (A records nothing: its
    bump is simply lost, and B serves the outdated entry)."""
    app_a, app_b = outage_app(), outage_app()
    client_a, client_b = app_a.test_client(), app_b.test_client()
    producto_id = add_producto(app_a, "10.00")
    monkeypatch.setattr(manager_of(app_a).outbox, "record", lambda connection, effects: [])
    get(client_b, producto_id)
    own_redis.pause()
    try:
        get(client_a, producto_id)
        set_precio(app_a, producto_id, "20.00")
    finally:
        own_redis.resume()
    time.sleep(RESET + 0.05)
    assert get(client_b, producto_id)[0].json["precio"] == 10.0  # stale on B
    assert manager_of(app_a).pending_invalidations == 0


def test_paused_redis_answers_within_the_socket_timeout_and_breaker_limits_probes(
    outage_app, own_redis
):
    app = outage_app()
    client = app.test_client()
    producto_id = add_producto(app, "10.00")
    get(client, producto_id)
    errors = []
    own_redis.pause()
    try:
        with signals.cache_error.connected_to(lambda *a, **kw: errors.append(1), app):
            started = time.monotonic()
            timings = [get(client, producto_id)[1] for _ in range(20)]
            total = time.monotonic() - started
    finally:
        own_redis.resume()
    assert sorted(timings)[len(timings) // 2] < 0.1, timings  # most never touch Redis
    assert max(timings) < 1.0, timings  # one socket timeout (0.2 s) plus a busy box
    # At most one probe per interval: a timeout per request would take 20 x 0.2 s.
    assert len(errors) <= 1 + int(total / RESET) + 1, (errors, total)


def test_a_successful_bump_closes_the_breaker_for_write_only_traffic(outage_app, own_redis):
    """Recovery seen first by a write: the next writes go straight to Redis, not to the record."""
    app = outage_app()
    producto_id = add_producto(app, "10.00")
    own_redis.kill()
    assert get(app.test_client(), producto_id)[0].headers["X-Cache"] == "BYPASS"
    manager = manager_of(app)
    assert manager.breaker.is_open
    own_redis.restart()
    time.sleep(RESET * 1.2)
    set_precio(app, producto_id, "11.00")  # the probe: bumps, and must close the circuit
    assert manager.breaker.closed
    set_precio(app, producto_id, "12.00")
    assert manager.pending_invalidations == 0
