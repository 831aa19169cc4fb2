"""Plain reads (polling dashboards): a statistic read lately is refreshed after a change.

Each test starts its own Redis and 3 gunicorn workers, so no other test's reads or
watchers count. Both were seen to fail before the hub refreshed read statistics
(the read after the order was a MISS, nothing having fetched the new figures).
"""

from __future__ import annotations

import time

import requests

from electro_isla_testing.live import Site, seed
from electro_isla_testing.servers import RedisServer
from tests.live.conftest import start

FAMILIES = {"ventas": "estadisticas_ventas", "usuarios": "estadisticas_usuarios"}


def fetches(site: Site) -> dict[str, int]:
    r = requests.get(f"{site.base}/api/admin/cache/stats/", headers=site.admin, timeout=10)
    families = r.json()["families"]
    return {stat: families[name]["fetches"] for stat, name in FAMILIES.items()}


def until(check, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_statistic_read_lately_is_refreshed_after_a_change_and_one_not_read_is_not(fresh_db):
    redis = RedisServer().start()
    server = start(fresh_db, redis.url)
    try:
        site = seed(fresh_db, server.url)
        first = site.stat("ventas")  # read: ventas is now of interest; usuarios never is
        assert first.status_code == 200
        before = fetches(site)
        site.order()  # bumps every statistic
        # Fetched by a hub, once, without any read after the order.
        assert until(lambda: fetches(site)["ventas"] == before["ventas"] + 1, 3.0), fetches(site)
        time.sleep(0.5)  # every hub's refresh of this change is over
        after = fetches(site)
        assert after["ventas"] == before["ventas"] + 1, "one fetch per change for every process"
        assert after["usuarios"] == before["usuarios"], "a statistic nobody read is not fetched"
        r = site.stat("ventas")
        assert r.headers["X-Cache"] == "HIT"
        assert r.json() != first.json(), "the order is counted"
        assert site.stat("usuarios").headers["X-Cache"] == "MISS"
    finally:
        server.stop()
        redis.stop()


def test_reads_stop_counting_after_the_read_window(fresh_db):
    redis = RedisServer().start()
    server = start(fresh_db, redis.url, LIVE_READ_REFRESH_SECONDS="1")
    try:
        site = seed(fresh_db, server.url)
        site.stat("ventas")
        time.sleep(2.0)  # the read is older than the window now
        before = fetches(site)
        site.order()
        time.sleep(1.5)
        assert fetches(site)["ventas"] == before["ventas"], "nobody reads it: not fetched"
        assert site.stat("ventas").headers["X-Cache"] == "MISS"
    finally:
        server.stop()
        redis.stop()
