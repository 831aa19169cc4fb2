"""/healthz and /readyz per the contract: the database decides readiness."""

from __future__ import annotations

import time

import pytest

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla.extensions import db
from electro_isla_testing.servers import free_port

# Timed: a full garbage collection must not land inside a measured request.
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ok_with_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "cache": "ok"}


def test_readyz_is_ready_but_degraded_without_redis(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200
    assert response.json == {"database": "ok", "cache": "degraded"}


def test_readyz_is_503_when_the_database_is_unreachable(redis_url, tmp_path):
    closed = free_port()
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_timeout": 1},
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": f"readyz{closed}",
            "LOG_DIR": str(tmp_path / "logs"),
        },
    )
    client = app.test_client()
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503
        assert response.json == {"database": "unavailable", "cache": "ok"}
        # Liveness does not depend on the database: do not restart a process for it.
        assert client.get("/healthz").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()
