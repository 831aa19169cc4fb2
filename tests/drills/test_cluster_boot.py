"""DRILL (d) on gunicorn: its workers boot while the 3-master Redis Cluster is down.

They used to build no client at all (cache disabled for life, revocations kept
in memory, login limit per process, /readyz `ok`). Now they serve from the
database, say `degraded`, and join the cluster within seconds of its start:
their writes invalidate another app's entries, their logouts and failed logins
are seen by it, and /readyz says `ok`.
"""

from __future__ import annotations

import time

import pytest
import requests

from electro_isla_testing.factories import PASSWORD, ProductoFactory, UsuarioFactory
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.servers import RedisClusterServers
from tests.helpers import auth_headers

WRONG = "no-es-la-clave"


def _settings(cluster: RedisClusterServers) -> dict[str, str]:
    return {
        "REDIS_MODE": "cluster",
        "REDIS_URL": cluster.url,
        "CACHE_WAIT_REPLICAS": "0",  # the test cluster has no replicas
        "REDIS_SOCKET_TIMEOUT": "0.2",
        "CACHE_CIRCUIT_RESET_SECONDS": "0.5",
    }


def _login(base: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{base}/api/auth/login/", json={"username": username, "password": password}, timeout=10
    )


@pytest.mark.slow
def test_gunicorn_workers_booted_while_the_cluster_was_down_join_it(drill_app, drill_db):
    cluster = RedisClusterServers()  # ports chosen, nothing listening yet
    settings = _settings(cluster)
    server = GunicornServer(drill_db, None, workers=2, threads=2, extra_env=settings)
    other = None
    try:
        server.start()
        base = server.url
        readiness = [requests.get(f"{base}/readyz", timeout=10).json() for _ in range(6)]
        assert all(r == {"database": "ok", "cache": "degraded"} for r in readiness), readiness

        cluster.start()
        other = drill_app(server.prefix, **{**settings, "CACHE_WAIT_REPLICAS": 0})
        with other.app_context():
            producto_id = ProductoFactory(precio="10.00", stock=5).id
            admin = auth_headers(other, UsuarioFactory(rol="admin").id)
            UsuarioFactory(username="ana")
        started = time.monotonic()
        streak = 0
        while streak < 6:  # six answers in a row: both workers, most likely
            assert time.monotonic() - started < 5, "the workers never reached the cluster"
            ok = requests.get(f"{base}/readyz", timeout=10).json()["cache"] == "ok"
            streak = streak + 1 if ok else 0
            time.sleep(0.05)

        # The other app caches the product; a write through gunicorn must reach it.
        client = other.test_client()
        assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
        assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
        patch = requests.patch(
            f"{base}/api/admin/productos/{producto_id}/",
            json={"precio": 12},
            headers=admin,
            timeout=10,
        )
        assert patch.status_code == 200, patch.text
        fresh = client.get(f"/api/productos/{producto_id}/")
        assert fresh.json["precio"] == 12.0 and fresh.headers["X-Cache"] == "MISS"

        # A logout through gunicorn is seen by the other app.
        token = _login(base, "ana", PASSWORD).json()["accessToken"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/perfil/", headers=bearer).status_code == 200
        out = requests.post(f"{base}/api/auth/logout/", headers=bearer, timeout=10)
        assert out.status_code == 200
        assert client.get("/api/perfil/", headers=bearer).status_code == 401

        # Failed logins through gunicorn fill the one shared window.
        for _ in range(5):
            assert _login(base, "ana", WRONG).status_code == 401
        blocked = client.post("/api/auth/login/", json={"username": "ana", "password": WRONG})
        assert blocked.status_code == 429
        assert "Traceback" not in server.log_tail(400), server.errors_logged()
    finally:
        server.stop()
        cluster.stop()
