"""Notifications are hints: lost ones, a dead Redis, a Sentinel failover, a Cluster node restart.

Each test starts its own Redis (or Sentinel set, or Cluster) and 3 gunicorn workers.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from electro_isla_testing.live import Site, StreamReader, seed
from electro_isla_testing.servers import RedisClusterServers, RedisServer, SentinelSet, quick_client
from tests.drills.test_sentinel_failover import wait_for
from tests.live.conftest import start

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


def total(event) -> int:  # noqa: ANN001
    return event.data["resumen"]["total_pedidos"]


def counted(site: Site) -> int:
    return site.stat("reporte").json()["resumen"]["total_pedidos"]


def test_a_lost_notification_still_arrives_within_1s(fresh_db):
    # PUBLISH renamed away: every notification of every write is lost.
    redis = RedisServer(args=("--rename-command", "PUBLISH", "")).start()
    server = start(fresh_db, redis.url)
    try:
        site = seed(fresh_db, server.url)
        reader = StreamReader(site.base, site.admin).start()
        try:
            first = {e.name: e for e in reader.take(4)}
            for n in range(1, 4):
                ordered = time.monotonic()
                site.order()
                event = reader.until(
                    lambda e, n=n: e.name == "reporte" and total(e) == total(first["reporte"]) + n,
                    timeout=3,
                )
                assert event.at - ordered < 1.0, f"{event.at - ordered:.3f}s"
        finally:
            reader.close()
        assert "LIVE publish failed" in server.log_path.read_text()
    finally:
        server.stop()
        redis.stop()


def test_redis_stopped_waits_answer_at_once_and_streams_keep_delivering(fresh_db):
    redis = RedisServer().start()
    server = start(fresh_db, redis.url)
    try:
        site = seed(fresh_db, server.url)
        etag = site.stat("reporte").headers["ETag"]
        reader = StreamReader(site.base, site.admin).start()
        before = total(reader.take(4)[-1])
        redis.kill()
        time.sleep(0.3)
        for _ in range(3):  # whichever worker answers
            started = time.monotonic()
            r = site.stat("reporte", extra={"If-None-Match": etag, "Prefer": "wait=20"})
            assert time.monotonic() - started < 1.5
            assert r.status_code in (200, 304)
            assert "Preference-Applied" not in r.headers
        # Streams choose to keep delivering: the database, at most once a second per process.
        try:
            ordered = time.monotonic()
            site.order()
            event = reader.until(lambda e: e.name == "reporte" and total(e) == before + 1, 5)
            assert event.at - ordered < 2.5
        finally:
            reader.close()
    finally:
        server.stop()
        redis.stop()


def watch_and_order(site: Site, disrupt, orders: int = 6) -> None:  # noqa: ANN001
    """Orders before, during and after `disrupt()`; the stream and a wait loop must see all."""
    reader = StreamReader(site.base, site.admin).start()
    seen_by_wait: list[int] = []
    stop = threading.Event()

    def waiter() -> None:
        etag = None
        while not stop.is_set():
            headers = {"If-None-Match": etag, "Prefer": "wait=5"} if etag else {}
            try:
                r = site.stat("reporte", extra=headers, timeout=15)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                etag = r.headers["ETag"]
                seen_by_wait.append(r.json()["resumen"]["total_pedidos"])
            elif r.status_code != 304:
                time.sleep(0.2)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    try:
        base = total(reader.take(4)[-1])
        placed = 0
        for _ in range(orders // 2):
            site.order()
            placed += 1
        disrupt()
        for _ in range(orders - orders // 2):
            deadline = time.monotonic() + 10
            while True:  # an order may meet the election: retry until placed
                try:
                    site.order()
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            placed += 1
        expected = base + placed
        # A bump the old master refused (READONLY while it was demoted) waits in the
        # outbox: every worker drains it within CACHE_PENDING_CHECK_MS (README, "What
        # survives what"), so a plain read is fresh within that, not at once.
        wait_for(lambda: counted(site) == expected, 0.25 + 1.0, "a fresh plain read")
        reader.until(lambda e: e.name == "reporte" and total(e) == expected, timeout=3)
        wait_for(lambda: seen_by_wait and seen_by_wait[-1] == expected, 6, "the wait loop")
    finally:
        stop.set()
        reader.close()
        thread.join(timeout=20)


@pytest.mark.slow
def test_a_sentinel_failover_during_the_watch_loses_no_update(fresh_db):
    sentinels = SentinelSet().start()
    server = start(
        fresh_db,
        None,
        REDIS_MODE="sentinel",
        REDIS_SENTINELS=sentinels.sentinel_hosts,
        REDIS_SENTINEL_MASTER=sentinels.service,
    )
    try:
        site = seed(fresh_db, server.url)
        old = sentinels.master.port

        def failover() -> None:
            quick_client(sentinels.sentinels[0].port, 2).execute_command(
                "SENTINEL", "FAILOVER", sentinels.service
            )
            wait_for(lambda: sentinels.master_port() != old, 15, "the promotion")

        watch_and_order(site, failover)
    finally:
        server.stop()
        sentinels.stop()


@pytest.mark.slow
def test_a_cluster_node_restart_during_the_watch_loses_no_update(fresh_db):
    cluster = RedisClusterServers().start()
    server = start(fresh_db, None, REDIS_MODE="cluster", REDIS_URL=cluster.url)
    try:
        site = seed(fresh_db, server.url)
        # The node that holds the live channel's subscriptions.
        import redis

        probe = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
        owner = probe.get_node_from_key(f"{server.prefix}:live").port
        probe.close()
        node: RedisServer = next(n for n in cluster.nodes if n.port == owner)

        def restart() -> None:
            node.kill()
            time.sleep(1.0)
            node.start()

        watch_and_order(site, restart)
    finally:
        server.stop()
        cluster.stop()
