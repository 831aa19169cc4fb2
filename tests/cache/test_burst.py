"""Cold bursts compute once (Redis lock), and a dead lock holder blocks nobody for long."""

from __future__ import annotations

import threading
import time

import pytest

from electro_isla.cache import cache_manager
from tests.cache.support import manager_of, raw_redis

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")

BURST = 40


def cold_burst(app, fetch_seconds: float = 0.3) -> tuple[int, list]:
    """40 threads (each its own app context) ask for one cold entry at once.

    Returns how much `fetches` grew and every thread's answer.
    """
    with app.app_context():
        before = cache_manager.get_stats()["fetches"]
    barrier = threading.Barrier(BURST)
    results: list = []
    lock = threading.Lock()

    def fetch():
        time.sleep(fetch_seconds)
        return {"valor_inventario": 123}

    def worker():
        with app.app_context():
            barrier.wait(10)
            value = cache_manager.get("estadisticas_productos", fetch)
            with lock:
                results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with app.app_context():
        after = cache_manager.get_stats()["fetches"]
    return after - before, results


def test_forty_concurrent_misses_fetch_exactly_once(app):
    grew, results = cold_burst(app)
    assert grew == 1
    assert results == [{"valor_inventario": 123}] * BURST


def test_without_the_lock_the_same_burst_fetches_many_times(make_app):
    app = make_app(CACHE_LOCK_ENABLED=False)
    grew, results = cold_burst(app)
    assert grew > BURST // 2  # what the lock saves
    assert len(results) == BURST


def _plant_dead_lock(app, ttl_ms: int) -> None:
    with app.app_context():
        key = cache_manager.key_for("estadisticas_productos")
    prefix = app.config["CACHE_KEY_PREFIX"]
    lock_key = key.replace(f"{prefix}:", f"{prefix}:lock:", 1)
    assert raw_redis(app).set(lock_key, "holder-that-died", px=ttl_ms, nx=True)


def test_a_dead_lock_holder_blocks_only_until_its_lock_expires(app):
    _plant_dead_lock(app, ttl_ms=600)
    calls = []
    started = time.monotonic()
    with app.app_context():
        value = cache_manager.get("estadisticas_productos", lambda: calls.append(1) or {"x": 1})
    elapsed = time.monotonic() - started
    assert value == {"x": 1}
    assert calls == [1]
    assert 0.5 <= elapsed < 1.5


def test_a_stuck_holder_blocks_nobody_beyond_the_lock_timeout(make_app):
    app = make_app(CACHE_LOCK_TIMEOUT=0.4)
    _plant_dead_lock(app, ttl_ms=60_000)  # held far longer than the timeout
    started = time.monotonic()
    with app.app_context():
        value = cache_manager.get("estadisticas_productos", lambda: {"x": 2})
    elapsed = time.monotonic() - started
    assert value == {"x": 2}
    assert 0.35 <= elapsed < 1.2


def test_a_lost_lock_holds_waiters_no_longer_than_the_lock_wait(app):
    """A lock nobody will release (lost in a failover) costs a waiter the short wait, not its lease."""
    _plant_dead_lock(app, ttl_ms=30_000)
    started = time.monotonic()
    with app.app_context():
        value = cache_manager.get("estadisticas_productos", lambda: {"x": 3})
        wait = manager_of(app).reads.lock_wait
    elapsed = time.monotonic() - started
    assert value == {"x": 3}
    assert wait <= elapsed < wait + 0.5
