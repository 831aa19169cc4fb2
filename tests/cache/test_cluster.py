"""REDIS_MODE=cluster on a real 3-master Redis Cluster the tests start on loopback.

The freshness suite runs on it too (tests/cache/test_freshness.py, `[cluster]`).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from redis.cluster import RedisCluster

from electro_isla.cache import cache_manager, shared_redis
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.shared_store.clients import parse_hosts
from electro_isla_testing.servers import RedisClusterServers
from tests.auth.support import WRONG_PASSWORD, failed_logins_through_two_apps, login
from tests.cache.support import add_producto, raw_redis
from tests.helpers import user_with_role


@pytest.fixture
def cluster_app(make_app, redis_cluster_url):
    def build(**overrides):
        # The test cluster has no replicas: nothing could acknowledge a WAIT.
        settings = {"CACHE_WAIT_REPLICAS": 0, **overrides}
        return make_app(REDIS_MODE="cluster", REDIS_URL=redis_cluster_url, **settings)

    return build


@pytest.mark.parametrize(
    "raw",
    ["redis://127.0.0.1:7000/0", "redis://127.0.0.1:7000", "127.0.0.1:7000", "redis://:pw@h:7000"],
)
def test_cluster_urls_in_every_usual_form_are_accepted(raw):
    host = "h" if "@h" in raw else "127.0.0.1"
    assert parse_hosts(raw, 6379) == [(host, 7000)]


def test_a_single_url_with_a_db_starts_the_app_on_the_cluster(make_app, redis_cluster_url):
    first = redis_cluster_url.split(",")[0]  # redis://127.0.0.1:<port>/0
    app = make_app(REDIS_MODE="cluster", REDIS_URL=first, CACHE_WAIT_REPLICAS=0)
    assert isinstance(shared_redis(app).resolve(), RedisCluster)
    producto_id = add_producto(app)
    client = app.test_client()
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"


def test_row_lookups_and_authenticated_requests_work_and_stay_one_round_trip(cluster_app):
    """Product detail and the per-request user check (row families) used to answer 500."""
    app = cluster_app()
    producto_id = add_producto(app, "10.00")
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    assert client.get("/api/auth/me/", headers=admin).status_code == 200
    assert client.get(f"/api/productos/{producto_id}/").status_code == 200
    redis = shared_redis(app).resolve()  # the real client: scripts call its evalsha
    calls: list[tuple] = []
    original = redis.execute_command

    def counting(*args, **kwargs):
        calls.append(args[:1])
        return original(*args, **kwargs)

    redis.execute_command = counting
    try:
        response = client.get(f"/api/productos/{producto_id}/")
    finally:
        redis.execute_command = original
    assert response.headers["X-Cache"] == "HIT"
    assert calls == [("EVALSHA",)]  # generations, value and counters: one script
    patch = client.patch(
        f"/api/admin/productos/{producto_id}/", json={"precio": 12.5}, headers=admin
    )
    assert patch.status_code == 200, patch.json
    fresh = client.get(f"/api/productos/{producto_id}/")
    assert fresh.headers["X-Cache"] == "MISS" and Decimal(str(fresh.json["precio"])) == Decimal(
        "12.5"
    )
    assert client.post("/api/auth/logout/", headers=admin).status_code in (200, 204)


def test_a_names_keys_share_one_slot(cluster_app):
    app = cluster_app()
    producto_id = add_producto(app)
    with app.app_context():
        cache_manager.get("producto", dict, row=producto_id)
        key = cache_manager.key_for("producto", row=producto_id)
        keys = [key, cache_manager.gen_key("producto"), cache_manager.gen_key("producto", 1)]
    slots = {RedisCluster.keyslot(raw_redis(app), k) for k in keys}
    assert len(slots) == 1


def test_cache_clear_and_stats_see_every_node(cluster_app):
    app = cluster_app()
    ids = [add_producto(app, nombre=f"P{i}") for i in range(6)]
    client = app.test_client()
    for producto_id in ids:
        client.get(f"/api/productos/{producto_id}/")
        client.get(f"/api/productos/{producto_id}/")
    for page in (1, 2):
        client.get(f"/api/productos/?page={page}")
    prefix = app.config["CACHE_KEY_PREFIX"]
    redis = raw_redis(app)
    stored = list(redis.scan_iter(match=f"{prefix}:v:*"))
    details = [k for k in stored if b":v:{producto}:" in k]
    pages = len(stored) - len(details)  # id lists, row fragments and memos of 2 pages
    assert len(details) == 6 and pages >= 2
    nodes = {redis.get_node_from_key(k).port for k in stored} | {
        redis.get_node_from_key(f"{prefix}:v:{{lista_productos}}:x").port
    }
    assert len(nodes) >= 2  # the entries really are spread over the cluster
    runner = app.test_cli_runner()
    stats = runner.invoke(args=["cache-stats"])
    assert stats.exit_code == 0, stats.output
    assert "backend        redis" in stats.output
    assert "hits           6" in stats.output
    cleared = runner.invoke(args=["cache-clear", "--pattern", "producto"])
    assert cleared.exit_code == 0, cleared.output
    assert "deleted 6 cached entries" in cleared.output
    assert len(list(redis.scan_iter(match=f"{prefix}:v:*"))) == pages
    assert f"deleted {pages}" in runner.invoke(args=["cache-clear"]).output


def test_login_limit_is_exactly_five_across_two_app_instances(cluster_app):
    answers = failed_logins_through_two_apps(cluster_app(), cluster_app(), 8, net="10.9.0.")
    assert answers == [401] * 5 + [429] * 3


def test_a_killed_node_means_bypass_and_no_500(make_app):
    cluster = RedisClusterServers().start()
    try:
        app = make_app(
            REDIS_MODE="cluster",
            REDIS_URL=cluster.url,
            CACHE_WAIT_REPLICAS=0,
            REDIS_SOCKET_TIMEOUT=0.2,
            CACHE_CIRCUIT_RESET_SECONDS=0.5,
        )
        producto_id = add_producto(app, "10.00")
        _, admin = user_with_role(app, "admin")
        client = app.test_client()
        assert client.get(f"/api/productos/{producto_id}/", headers=admin).status_code == 200
        assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
        redis = shared_redis(app)
        with app.app_context():
            key = cache_manager.gen_key("producto", producto_id)
        owner = redis.get_node_from_key(key).port
        next(n for n in cluster.nodes if n.port == owner).kill()
        answers = []
        for _ in range(12):
            started = time.monotonic()
            detail = client.get(f"/api/productos/{producto_id}/")
            me = client.get("/api/auth/me/", headers=admin)
            answers.append((detail.status_code, me.status_code, time.monotonic() - started))
        assert all(d == 200 and m == 200 for d, m, _ in answers), answers
        assert max(t for _, _, t in answers) < 1.0, answers
        assert detail.headers["X-Cache"] == "BYPASS"
        with app.app_context():
            _db.session.get(Producto, producto_id).precio = Decimal("11.00")
            _db.session.commit()
        patch = client.patch(
            f"/api/admin/productos/{producto_id}/", json={"precio": 12}, headers=admin
        )
        assert patch.status_code == 200, patch.json
        assert client.get(f"/api/productos/{producto_id}/").json["precio"] == 12.0
    finally:
        cluster.stop()


def test_a_worker_starting_while_no_node_answers_serves_from_the_database(make_app):
    from electro_isla_testing.servers import free_cluster_port

    dead = f"redis://127.0.0.1:{free_cluster_port()}/0"
    app = make_app(REDIS_MODE="cluster", REDIS_URL=dead, REDIS_SOCKET_TIMEOUT=0.2)
    producto_id = add_producto(app, "10.00")
    response = app.test_client().get(f"/api/productos/{producto_id}/")
    assert response.status_code == 200 and response.headers["X-Cache"] == "BYPASS"
    assert login(app.test_client(), "nadie", WRONG_PASSWORD).status_code == 401  # throttled locally
