"""A wait sent again with a tag the hub has replaced: answered from the hub, no cache read.

One worker, so the hub that woke the first wait is the one the second reaches.
Seen failing before the shortcut (the answer came from a cache read: X-Cache HIT).
"""

from __future__ import annotations

import threading
import time

import requests
from redis import Redis

from electro_isla_testing.live import seed
from electro_isla_testing.servers import RedisServer
from tests.live.conftest import start
from tests.live.test_wait import etag_of, wait_headers


def test_a_replaced_tag_is_answered_from_the_hub_with_the_current_version(fresh_db):
    redis = RedisServer().start()
    server = start(fresh_db, redis.url, workers=1)
    try:
        site = seed(fresh_db, server.url)
        first = site.stat("reporte")
        old = first.headers["ETag"]
        woken: list[requests.Response] = []
        held = {"If-None-Match": old, "Prefer": "wait=10"}
        watcher = threading.Thread(target=lambda: woken.append(site.stat("reporte", extra=held)))
        watcher.start()
        time.sleep(0.5)
        site.order()
        watcher.join(timeout=15)
        assert woken[0].status_code == 200
        assert woken[0].headers["ETag"] != old
        again = site.stat("reporte", extra=held)  # the old tag once more
        assert again.status_code == 200
        assert "Preference-Applied" not in again.headers
        assert "X-Cache" not in again.headers, "no cache lookup: the hub knows it is replaced"
        assert (again.text, again.headers["ETag"]) == (woken[0].text, woken[0].headers["ETag"])
        now = site.stat("reporte")
        assert (now.text, now.headers["ETag"]) == (again.text, again.headers["ETag"])
    finally:
        server.stop()
        redis.stop()


def test_a_replaced_tag_sent_right_after_a_write_counts_that_write(fresh_db):
    """The shortcut must not beat freshness: a wait re-sent with a replaced tag just
    after an order was answered counts that order, even when the hub has not heard of
    it yet (every notification lost: PUBLISH renamed away, the hub learns by recheck)."""
    redis = RedisServer(args=("--rename-command", "PUBLISH", "")).start()
    server = start(fresh_db, redis.url, workers=1)
    try:
        site = seed(fresh_db, server.url)
        first = site.stat("reporte")
        old = first.headers["ETag"]
        placed = first.json()["resumen"]["total_pedidos"]
        held = {"If-None-Match": old, "Prefer": "wait=10"}
        woken: list[requests.Response] = []
        watcher = threading.Thread(target=lambda: woken.append(site.stat("reporte", extra=held)))
        watcher.start()
        time.sleep(0.5)
        site.order()
        placed += 1
        watcher.join(timeout=15)
        assert woken[0].status_code == 200  # the hub has replaced `old` (by its recheck)
        seen = []
        for _ in range(5):
            site.order()
            placed += 1
            again = site.stat("reporte", extra=held)
            assert again.status_code == 200
            seen.append(again.json()["resumen"]["total_pedidos"])
        assert seen == list(range(placed - 4, placed + 1)), "each answer counts the order before it"
    finally:
        server.stop()
        redis.stop()


def test_a_wait_sent_again_with_the_hubs_tag_looks_nothing_up(fresh_db):
    """The watcher's next wait after a change carries the tag the hub holds: `answer`
    holds it from the hub and a change answers it from the hub's fetch, so the token
    check's round trip looks the statistic up for nothing (it did: one Lua lookup and
    one JSON parse of the figures per watcher per change)."""
    redis = RedisServer().start()
    server = start(fresh_db, redis.url, workers=1)
    try:
        site = seed(fresh_db, server.url)
        first = site.stat("reporte")
        tag, placed = etag_of(first), first.json()["resumen"]["total_pedidos"]
        assert site.stat("reporte", extra=wait_headers(tag, 1)).status_code == 304  # hub holds it
        stats = Redis.from_url(redis.url)
        key = f"{server.prefix}:stats:{{reporte_general}}"
        before = sum(int(stats.hget(key, f) or 0) for f in ("hits", "misses"))
        woken: list[requests.Response] = []
        watcher = threading.Thread(
            target=lambda: woken.append(site.stat("reporte", extra=wait_headers(tag, 10)))
        )
        watcher.start()
        time.sleep(0.5)
        site.order()
        watcher.join(timeout=15)
        assert woken[0].status_code == 200
        assert woken[0].json()["resumen"]["total_pedidos"] == placed + 1
        lookups = sum(int(stats.hget(key, f) or 0) for f in ("hits", "misses")) - before
        assert lookups == 1, f"{lookups} lookups of reporte_general (the hub's fetch is one)"
    finally:
        server.stop()
        redis.stop()
