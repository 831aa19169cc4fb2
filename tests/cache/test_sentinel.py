"""REDIS_MODE=sentinel on a real master, replica and three sentinels (quorum 2) on loopback.

Configured by REDIS_SENTINELS + REDIS_SENTINEL_MASTER alone (no REDIS_URL). The
failover drills run on gunicorn in tests/drills/test_sentinel_failover.py.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import redis as redis_lib

from electro_isla.cache import cache_manager, shared_redis
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.shared_store import ReplicationLag, shared_store
from electro_isla_testing.servers import SentinelSet
from tests.auth.support import failed_logins_through_two_apps
from tests.cache.support import add_producto, manager_of
from tests.helpers import user_with_role

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


@pytest.fixture(scope="module")
def sentinels():
    servers = SentinelSet().start()
    yield servers
    servers.stop()


@pytest.fixture
def sentinel_app(make_app, sentinels, tmp_path):
    def build(**overrides):
        settings = {
            "REDIS_URL": None,
            "REDIS_MODE": "sentinel",
            "REDIS_SENTINELS": sentinels.sentinel_hosts,
            "REDIS_SENTINEL_MASTER": sentinels.service,
            "CACHE_PENDING_DIR": str(tmp_path / "pending"),
        }
        settings.update(overrides)
        return make_app(**settings)

    return build


def test_sentinels_alone_configure_the_shared_cache(sentinel_app, sentinels):
    app = sentinel_app()
    assert manager_of(app).backend_name == "redis"
    assert shared_redis(app).connection_pool.service_name == sentinels.service
    producto_id = add_producto(app, "10.00")
    client = app.test_client()
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("11.00")
        _db.session.commit()
    fresh = client.get(f"/api/productos/{producto_id}/")
    assert fresh.headers["X-Cache"] == "MISS" and fresh.json["precio"] == 11.0
    # The entry lives on the master the sentinels name, and the replica has it.
    master = redis_lib.Redis(port=sentinels.master_port())
    prefix = app.config["CACHE_KEY_PREFIX"]
    assert list(master.scan_iter(match=f"{prefix}:v:*"))
    assert client.get("/readyz").json["cache"] == "ok"
    runner = app.test_cli_runner()
    assert "backend        redis" in runner.invoke(args=["cache-stats"]).output
    assert "deleted 2 cached entries" in runner.invoke(args=["cache-clear"]).output


def test_a_bump_counts_only_once_a_replica_has_it(sentinel_app, sentinels):
    """The replica paused: the bump reaches the master only, so it is kept and replayed."""
    app = sentinel_app(CACHE_CIRCUIT_RESET_SECONDS=0.3, CACHE_WAIT_TIMEOUT_MS=100)
    producto_id = add_producto(app, "10.00")
    client = app.test_client()
    client.get(f"/api/productos/{producto_id}/")
    manager = manager_of(app)
    sentinels.replica.pause()
    try:
        with app.app_context():
            with pytest.raises(ReplicationLag):
                manager.store.bump([manager.gen_key("producto", producto_id)])
            _db.session.get(Producto, producto_id).precio = Decimal("12.00")
            _db.session.commit()
        # The row, its catalogue fragment and the one statistic that reads precio.
        assert manager.pending_invalidations == 3
        # The master has the bumps and answers: lag is no outage, the cache stays in use.
        lagging = client.get(f"/api/productos/{producto_id}/")
        assert lagging.json["precio"] == 12.0 and lagging.headers["X-Cache"] == "MISS"
        assert manager.breaker.closed and manager.pending_invalidations == 3
    finally:
        sentinels.replica.resume()
    time.sleep(0.4)
    response = client.get(f"/api/productos/{producto_id}/")
    # Replayed: the master had every bump (each row marked applied), so the replay moves
    # no generation again and the value read at 12.00 under them stays in use.
    assert response.json["precio"] == 12.0 and response.headers["X-Cache"] == "HIT"
    assert manager.pending_invalidations == 0


def test_login_limit_is_shared_by_two_app_instances(sentinel_app):
    answers = failed_logins_through_two_apps(sentinel_app(), sentinel_app(), 7, net="10.9.1.")
    assert answers == [401] * 5 + [429] * 2


def test_a_hung_sentinel_costs_a_request_less_than_a_second(sentinel_app, sentinels):
    """SIGSTOP the first sentinel, then force every connection to look the master up again."""
    app = sentinel_app(REDIS_SOCKET_TIMEOUT=0.25)
    producto_id = add_producto(app, "10.00")
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    client.get(f"/api/productos/{producto_id}/")
    first = sentinels.sentinels[0]
    first.pause()
    try:
        master = redis_lib.Redis(port=sentinels.master_port(), socket_timeout=1)
        # App connections must reconnect, asking the sentinels where the master is.
        master.client_kill_filter(_type="normal", skipme=True)
        shared_redis(app).connection_pool.disconnect()
        timings = []
        for _ in range(6):
            started = time.monotonic()
            detail = client.get(f"/api/productos/{producto_id}/")
            me = client.get("/api/auth/me/", headers=admin)
            timings.append(time.monotonic() - started)
            assert detail.status_code == 200 and me.status_code == 200
        assert max(timings) < 1.0, timings
        # A fresh app (a worker restarted meanwhile) starts against the hung sentinel too.
        fresh = sentinel_app(REDIS_SOCKET_TIMEOUT=0.25).test_client()
        started = time.monotonic()
        assert fresh.get(f"/api/productos/{producto_id}/").status_code == 200
        assert time.monotonic() - started < 1.0
        with app.app_context():
            assert cache_manager.ping()
    finally:
        first.resume()


def _wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis_lib.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _set_precio(app, producto_id: int, precio: str) -> None:
    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal(precio)
        _db.session.commit()


@pytest.mark.slow
def test_bumps_on_the_old_master_during_a_failover_are_not_lost(make_app, tmp_path):
    """SENTINEL FAILOVER: the old master keeps accepting writes until it is demoted.

    Two apps side by side on the same failover: one with WAIT (the default with
    sentinel), one without (the control). Each warms a product, the failover
    promotes the replica, each app commits a new price while its pooled
    connection still talks to the old master, and the old master's full
    resync throws those bumps away. The control then serves its old price as a
    HIT (the bug); the real app treated the unacknowledged bump as failed,
    kept it and replayed it on the new master.
    """
    servers = SentinelSet().start()
    try:
        common = {
            "REDIS_URL": None,
            "REDIS_MODE": "sentinel",
            "REDIS_SENTINELS": servers.sentinel_hosts,
            "REDIS_SENTINEL_MASTER": servers.service,
            "CACHE_CIRCUIT_RESET_SECONDS": 0.3,
            "CACHE_WAIT_TIMEOUT_MS": 100,
            # The pools stay on the old master (they would follow it within this
            # interval otherwise): what a process meets before it notices the move.
            "REDIS_SENTINEL_CHECK_MS": 0,
        }
        real = make_app(
            **common, CACHE_KEY_PREFIX=f"{tmp_path.name}r", CACHE_PENDING_DIR=str(tmp_path / "r")
        )
        control = make_app(
            **common,
            CACHE_KEY_PREFIX=f"{tmp_path.name}c",
            CACHE_PENDING_DIR=str(tmp_path / "c"),
            CACHE_WAIT_REPLICAS=0,
        )
        ids = {real: add_producto(real, "10.00"), control: add_producto(control, "10.00")}
        for app, producto_id in ids.items():
            client = app.test_client()
            client.get(f"/api/productos/{producto_id}/")
            assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
        old_master, old_replica = servers.master.port, servers.replica.port
        quick = redis_lib.Redis(port=servers.sentinels[1].port, socket_timeout=2)
        quick.execute_command("SENTINEL", "FAILOVER", servers.service)
        _wait_for(lambda: servers.master_port() == old_replica, 20, "the promotion")
        for app, producto_id in ids.items():
            _set_precio(app, producto_id, "20.00")  # bumps on the old master
        assert manager_of(real).pending_invalidations > 0  # not acknowledged: kept
        assert manager_of(control).pending_invalidations == 0

        def demoted() -> bool:
            info = redis_lib.Redis(port=old_master, socket_timeout=0.5).info("replication")
            return info["role"] == "slave" and info["master_link_status"] == "up"

        _wait_for(demoted, 30, "the old master's demotion")
        time.sleep(0.5)
        answers = {}
        for app, producto_id in ids.items():
            client = app.test_client()
            _wait_for(
                lambda c=client, p=producto_id: (
                    c.get(f"/api/productos/{p}/").headers["X-Cache"] != "BYPASS"
                ),
                5,
                "the cache back",
            )
            response = client.get(f"/api/productos/{producto_id}/")
            answers[app] = (response.json["precio"], response.headers["X-Cache"])
        assert answers[control] == (10.0, "HIT")  # the hazard is real: the bump was lost
        assert answers[real] == (20.0, "HIT")

        def replayed() -> bool:
            # A replay the resyncing replica did not acknowledge in time stays kept
            # (lag does not open the breaker); the next one, a breaker interval later, counts.
            real.test_client().get(f"/api/productos/{ids[real]}/")
            return manager_of(real).pending_invalidations == 0

        _wait_for(replayed, 10, "the replay acknowledged")
    finally:
        servers.stop()


@pytest.mark.slow
def test_a_warm_pool_follows_a_failover_that_the_old_master_survives(make_app):
    """SENTINEL FAILOVER leaves the old master up, and a master, for about 10 s.

    A pool that only asks the sentinels when it opens a connection keeps reading
    the old master all that time: here it would read "before" where the new
    master has "after" (a bump another process made there, in real life). The
    pool asks every REDIS_SENTINEL_CHECK_MS and follows within about that.
    """
    servers = SentinelSet().start()
    try:
        app = make_app(
            REDIS_URL=None,
            REDIS_MODE="sentinel",
            REDIS_SENTINELS=servers.sentinel_hosts,
            REDIS_SENTINEL_MASTER=servers.service,
            REDIS_SENTINEL_CHECK_MS=200,
        )
        client = shared_redis(app)
        client.set("figures", "before")  # a connection to the old master, idle in the pool
        old_master, old_replica = servers.master.port, servers.replica.port
        redis_lib.Redis(port=servers.sentinels[0].port, socket_timeout=2).execute_command(
            "SENTINEL", "FAILOVER", servers.service
        )
        _wait_for(lambda: servers.master_port() == old_replica, 20, "the promotion")
        redis_lib.Redis(port=old_replica).set("figures", "after")
        started = time.monotonic()
        _wait_for(lambda: client.get("figures") == b"after", 5, "the pool on the new master")
        followed = time.monotonic() - started
        old_role = redis_lib.Redis(port=old_master, socket_timeout=1).execute_command("ROLE")[0]
        assert old_role == b"master", "the old master was demoted already: nothing was shown"
        assert followed < 1.5, f"followed after {followed:.2f}s"
        # At least once: a sentinel that has not heard of the promotion yet may name the
        # old master to one check, and the next check moves the pool again.
        assert client.connection_pool.switches >= 1
        assert shared_store(app).master_switches() == client.connection_pool.switches
    finally:
        servers.stop()


def test_every_sentinel_hung_means_bypass_and_one_probe_per_interval(sentinel_app, sentinels):
    """No sentinel answers: the master cannot be found; the breaker keeps requests fast."""
    app = sentinel_app(REDIS_SOCKET_TIMEOUT=0.2, CACHE_CIRCUIT_RESET_SECONDS=0.5)
    producto_id = add_producto(app, "10.00")
    client = app.test_client()
    client.get(f"/api/productos/{producto_id}/")
    for s in sentinels.sentinels:
        s.pause()
    try:
        shared_redis(app).connection_pool.disconnect()  # next use must ask the sentinels
        timings, caches = [], []
        for _ in range(10):
            started = time.monotonic()
            response = client.get(f"/api/productos/{producto_id}/")
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
            caches.append(response.headers["X-Cache"])
        assert set(caches) == {"BYPASS"}
        assert max(timings) < 1.0, timings  # 3 sentinels x 0.2 s, once
        assert sorted(timings)[5] < 0.1, timings  # the rest never wait: the breaker is open
    finally:
        for s in sentinels.sentinels:
            s.resume()
    time.sleep(0.6)
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
