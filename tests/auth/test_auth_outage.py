"""Auth while Redis is down: login, logout and throttling keep working per process, and a
revocation made during the outage reaches the other workers once Redis is back."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

from electro_isla.auth.tokens import revocation_keys
from electro_isla.cache import shared_redis
from tests.auth.support import bearer, login, make_usuario

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")

WRONG = "no-es-la-clave"
RESET = 0.3  # circuit-breaker interval for these apps
# Production's socket timeout (the shared fixture raises it for loaded CI machines).
OUTAGE = {"CACHE_CIRCUIT_RESET_SECONDS": RESET, "REDIS_SOCKET_TIMEOUT": 0.25}


def timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_auth_survives_a_redis_outage_and_replays_revocations(make_app, own_redis):
    settings = {
        "REDIS_URL": own_redis.url,
        "CACHE_CIRCUIT_RESET_SECONDS": RESET,
        "REDIS_SOCKET_TIMEOUT": 0.25,
    }
    app, other_worker = make_app(**settings), make_app(**settings)
    make_usuario(app, username="ana")
    client, other = app.test_client(), other_worker.test_client()
    token = login(client, "ana").json["accessToken"]
    assert other.get("/api/auth/me/", headers=bearer(token)).status_code == 200

    own_redis.kill()
    response, seconds = timed(lambda: login(client, "ana", ip="10.9.0.1"))
    assert response.status_code == 200 and seconds < 1.0
    response, seconds = timed(lambda: client.get("/api/auth/me/", headers=bearer(token)))
    assert response.status_code == 200 and seconds < 1.0
    assert client.post("/api/auth/logout/", headers=bearer(token)).status_code == 200
    # Refused although Redis never got it: the database answers during the outage.
    assert client.get("/api/auth/me/", headers=bearer(token)).status_code == 401

    # Throttling falls back to this process's windows.
    for n in range(5):
        assert login(client, "ana", WRONG, ip=f"10.9.1.{n}").status_code == 401
    blocked = login(client, "ana", ip="10.9.1.9")
    assert blocked.status_code == 429 and blocked.json["bloqueado"] is True

    own_redis.start()
    time.sleep(RESET + 0.1)
    # The next request on this worker applies the revocation the outbox kept...
    relogin = login(client, "ana", ip="10.9.2.1")
    assert relogin.status_code == 200, relogin.json
    fresh = relogin.json["accessToken"]
    assert client.get("/api/auth/me/", headers=bearer(fresh)).status_code == 200
    key = f"{app.config['CACHE_KEY_PREFIX']}:auth:revoked"
    for revoked in revocation_keys(pyjwt.decode(token, options={"verify_signature": False})):
        assert shared_redis(app).zscore(key, revoked) is not None
    # ...so the other worker now refuses the token logged out during the outage.
    time.sleep(RESET)
    assert other.get("/api/auth/me/", headers=bearer(token)).status_code == 401
    assert other.get("/api/auth/me/", headers=bearer(fresh)).status_code == 200


def test_a_hung_redis_costs_each_auth_request_well_under_a_second(make_app, own_redis):
    app = make_app(REDIS_URL=own_redis.url, **OUTAGE)
    make_usuario(app, username="ana")
    client = app.test_client()
    token = login(client, "ana").json["accessToken"]
    own_redis.pause()
    try:
        for call in (
            lambda: login(client, "ana", ip="10.9.3.1"),
            lambda: login(client, "ana", WRONG, ip="10.9.3.2"),
            lambda: client.get("/api/auth/me/", headers=bearer(token)),
            lambda: client.post("/api/auth/logout/", headers=bearer(token)),
            lambda: client.get("/api/auth/me/", headers=bearer(token)),
        ):
            response, seconds = timed(call)
            assert response.status_code in (200, 401), response.json
            assert seconds < 1.0, seconds
        assert response.status_code == 401  # logged out, remembered by this worker
    finally:
        own_redis.resume()
