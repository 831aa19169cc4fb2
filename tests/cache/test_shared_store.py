"""The one Redis layer (electro_isla.shared_store): lazy clients, one breaker, a truthful /readyz.

Drills on real servers the tests start:
(d) a worker that boots while the 3-master cluster is down joins it once it is
    up: its writes invalidate the others' entries, its logouts and failed logins
    are seen by the others, /readyz says `degraded` until then and `ok` after;
(e) a WAIT no replica acknowledges in time does not open the breaker.
"""

from __future__ import annotations

import time

import electro_isla.cache.signals as signals
from electro_isla.shared_store import shared_store
from electro_isla_testing.servers import RedisClusterServers
from tests.auth.support import bearer, login, make_usuario
from tests.cache.support import add_producto, manager_of
from tests.helpers import user_with_role

WRONG = "no-es-la-clave"


def _cluster_settings(cluster: RedisClusterServers) -> dict:
    return {
        "REDIS_MODE": "cluster",
        "REDIS_URL": cluster.url,
        "CACHE_WAIT_REPLICAS": 0,  # the test cluster has no replicas
        "REDIS_SOCKET_TIMEOUT": 0.2,
        "CACHE_CIRCUIT_RESET_SECONDS": 0.5,
    }


def _until(check, seconds: float) -> float:
    """Seconds until check() held; fails after `seconds`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_worker_booted_while_the_cluster_was_down_joins_it_when_it_comes_up(make_app):
    cluster = RedisClusterServers()  # ports chosen, nothing listening yet
    try:
        early = make_app(**_cluster_settings(cluster))
        producto_id = add_producto(early, "10.00")
        _, admin = user_with_role(early, "admin")
        make_usuario(early, username="ana")
        first = early.test_client()
        assert first.get("/readyz").json == {"database": "ok", "cache": "degraded"}
        assert first.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "BYPASS"

        cluster.start()
        late = make_app(**_cluster_settings(cluster))
        second = late.test_client()
        waited = _until(lambda: first.get("/readyz").json["cache"] == "ok", 5)
        assert waited < 3, waited
        assert shared_store(early).connected

        # The late worker caches the product; the early worker's write must reach it.
        assert second.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
        assert second.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
        patch = first.patch(
            f"/api/admin/productos/{producto_id}/", json={"precio": 12}, headers=admin
        )
        assert patch.status_code == 200, patch.json
        fresh = second.get(f"/api/productos/{producto_id}/")
        assert fresh.json["precio"] == 12.0 and fresh.headers["X-Cache"] == "MISS"

        # And the other way round: the late worker's write reaches the early one's entry.
        assert first.get(f"/api/productos/{producto_id}/").headers["X-Cache"] in {"MISS", "HIT"}
        assert first.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
        _, late_admin = user_with_role(late, "admin")
        patch = second.patch(
            f"/api/admin/productos/{producto_id}/", json={"precio": 13}, headers=late_admin
        )
        assert patch.status_code == 200, patch.json
        assert first.get(f"/api/productos/{producto_id}/").json["precio"] == 13.0

        # Logouts are seen both ways.
        token = login(first, "ana").json["accessToken"]
        assert second.get("/api/perfil/", headers=bearer(token)).status_code == 200
        assert first.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
        assert second.get("/api/perfil/", headers=bearer(token)).status_code == 401
        token = login(second, "ana").json["accessToken"]
        assert first.get("/api/perfil/", headers=bearer(token)).status_code == 200
        assert second.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
        assert first.get("/api/perfil/", headers=bearer(token)).status_code == 401

        # Failed logins through the early worker count on the late one: one shared window.
        for _ in range(5):
            assert login(first, "ana", WRONG).status_code == 401
        assert login(second, "ana", WRONG).status_code == 429
    finally:
        cluster.stop()


def test_a_wait_no_replica_acknowledges_does_not_open_the_breaker(make_app, own_redis):
    """CACHE_WAIT_REPLICAS=1 and no replica: every bump is a ReplicationLag, never an outage."""
    settings = {
        "REDIS_URL": own_redis.url,
        "CACHE_WAIT_REPLICAS": 1,
        "CACHE_WAIT_TIMEOUT_MS": 50,
        "CACHE_CIRCUIT_RESET_SECONDS": 30,
    }
    app, other = make_app(**settings), make_app(**settings)
    producto_id = add_producto(app, "10.00")
    _, admin = user_with_role(app, "admin")
    make_usuario(app, username="ana")
    client, other_client = app.test_client(), other.test_client()
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
    patch = client.patch(f"/api/admin/productos/{producto_id}/", json={"precio": 12}, headers=admin)
    assert patch.status_code == 200, patch.json
    breaker = manager_of(app).breaker
    # The master has the bump: the next reads are fresh and still use the cache.
    fresh = client.get(f"/api/productos/{producto_id}/")
    assert fresh.json["precio"] == 12.0 and fresh.headers["X-Cache"] == "MISS"
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
    assert client.get("/readyz").json["cache"] == "ok"
    # The login limit stays shared.
    for _ in range(5):
        assert login(client, "ana", WRONG).status_code == 401
    assert login(other_client, "ana", WRONG).status_code == 429
    assert breaker.closed


def test_a_bump_no_replica_acknowledged_is_still_announced(make_app, own_redis):
    """The master moved the generations (only the replicas lag): live watchers are told
    now, not when the replay finds the rows already applied and moves nothing."""
    app = make_app(REDIS_URL=own_redis.url, CACHE_WAIT_REPLICAS=1, CACHE_WAIT_TIMEOUT_MS=50)
    producto_id = add_producto(app, "10.00")
    _, admin = user_with_role(app, "admin")
    announced: list[frozenset[str]] = []

    def heard(_sender, names, keys) -> None:  # noqa: ANN001
        announced.append(names)

    signals.generations_bumped.connect(heard, weak=False)
    try:
        patch = app.test_client().patch(
            f"/api/admin/productos/{producto_id}/", json={"precio": 12}, headers=admin
        )
        assert patch.status_code == 200, patch.json
    finally:
        signals.generations_bumped.disconnect(heard)
    assert any("producto" in names for names in announced), announced


def test_registering_a_script_connects_nowhere(make_app):
    from electro_isla_testing.servers import free_cluster_port

    dead = f"redis://127.0.0.1:{free_cluster_port()}/0"
    app = make_app(REDIS_MODE="cluster", REDIS_URL=dead, REDIS_SOCKET_TIMEOUT=0.2)
    client = shared_store(app).client
    assert client is not None and not client.built
    script = client.register_script("return 1")
    assert len(script.sha) == 40 and not client.built
