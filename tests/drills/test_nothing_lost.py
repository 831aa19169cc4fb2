"""Nothing lost: revocations and invalidations through an emptied Redis and a killed writer.

Real gunicorn workers on a private PostgreSQL and Redis the test restarts,
flushes, stops and pauses. Each drill fails on the code before the outbox
(revocations trusted to Redis' per-jti keys, bumps applied only after COMMIT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from electro_isla_testing.factories import PASSWORD, UsuarioFactory
from electro_isla_testing.gunicorn import PROJECT_DIR, SECRET_KEY, GunicornServer
from tests.drills.conftest import database_rows
from tests.helpers import auth_headers

WORKERS = 3
SPREAD = 36  # requests on fresh connections, 12 at a time: every worker answers some
CHECK_MS = 250  # CACHE_PENDING_CHECK_MS, the default


def spread_get(server: GunicornServer, path: str, headers: dict[str, str]) -> list:
    """GET `path` SPREAD times, concurrently, each on its own connection."""

    def one(_: int) -> requests.Response:
        return requests.get(
            server.url + path, headers={**headers, "Connection": "close"}, timeout=10
        )

    with ThreadPoolExecutor(12) as pool:
        return list(pool.map(one, range(SPREAD)))


def statuses(responses: list) -> set[int]:
    return {r.status_code for r in responses}


def login(server: GunicornServer, username: str) -> dict[str, str]:
    response = requests.post(
        f"{server.url}/api/auth/login/",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def logout(server: GunicornServer, headers: dict[str, str]) -> None:
    response = requests.post(f"{server.url}/api/auth/logout/", headers=headers, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def gunicorn(drill_db, drill_redis):  # noqa: ANN201
    servers: list[GunicornServer] = []

    def start() -> GunicornServer:
        server = GunicornServer(drill_db, drill_redis.url, workers=WORKERS, threads=4)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["restart", "flushall"])
def test_a_logged_out_token_stays_refused_after_redis_restarts_empty_or_is_flushed(
    drill_app, drill_redis, gunicorn, fault
):
    server = gunicorn()
    app = drill_app(server.prefix)
    with app.app_context():
        UsuarioFactory(username="ana")
    server.start()
    token, kept = login(server, "ana"), login(server, "ana")
    assert statuses(spread_get(server, "/api/perfil/", token)) == {200}
    logout(server, token)
    assert statuses(spread_get(server, "/api/perfil/", token)) == {401}

    if fault == "restart":
        drill_redis.restart()  # same address, empty: no persistence, as in docker-compose.yml
    else:
        redis.Redis.from_url(drill_redis.url).flushall()
    assert statuses(spread_get(server, "/api/perfil/", token)) == {401}, server.errors_logged()
    assert statuses(spread_get(server, "/api/perfil/", kept)) == {200}  # only what was revoked


@pytest.mark.slow
def test_a_logout_during_an_outage_is_refused_by_every_other_worker_once_redis_is_back_empty(
    drill_app, drill_redis, gunicorn
):
    server = gunicorn()
    app = drill_app(server.prefix)  # the logging-out worker: it stays idle afterwards
    with app.app_context():
        UsuarioFactory(username="ana")
    server.start()
    token = login(server, "ana")
    assert statuses(spread_get(server, "/api/perfil/", token)) == {200}

    drill_redis.kill()
    response = app.test_client().post("/api/auth/logout/", headers=token)
    assert response.status_code == 200
    drill_redis.start()  # back, empty

    # The gunicorn workers never saw the outage; the worker that logged out says nothing.
    assert statuses(spread_get(server, "/api/perfil/", token)) == {401}, server.errors_logged()
    assert statuses(spread_get(server, "/api/perfil/", login(server, "ana"))) == {200}


def clientes(response: requests.Response) -> int:
    counts = {row["rol"]: row["count"] for row in response.json()["usuarios_por_rol"]}
    return counts["cliente"]


def create_user_cli(database_url: str, redis_url: str, prefix: str) -> subprocess.Popen:
    """`flask create-user` as its own process, whose Redis calls may wait 30 s."""
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET_KEY,
        "CACHE_KEY_PREFIX": prefix,
        "REDIS_SOCKET_TIMEOUT": "30",
        "LOG_DIR": tempfile.mkdtemp(prefix="ei-cli-logs-"),
    }
    flask = str(Path(sys.executable).parent / "flask")
    args = ["create-user", "nuevo", "--email", "nuevo@example.com", "--password", "nuevo-12345"]
    return subprocess.Popen(
        [flask, "--app", "wsgi", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_a_writer_killed_while_its_bump_waits_on_redis_loses_no_invalidation(
    drill_app, drill_db, drill_redis, gunicorn
):
    server = gunicorn()
    app = drill_app(server.prefix)
    with app.app_context():
        admin_id = UsuarioFactory(rol="admin").id
    admin = auth_headers(app, admin_id)
    server.start()
    path = "/api/admin/estadisticas/usuarios/"
    warm = spread_get(server, path, admin)
    assert statuses(warm) == {200}
    before = clientes(warm[0])
    assert {r.headers["X-Cache"] for r in spread_get(server, path, admin)} == {"HIT"}

    control = redis.Redis.from_url(drill_redis.url)
    control.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    try:
        writer = create_user_cli(drill_db, drill_redis.url, server.prefix)
        deadline = time.monotonic() + 30
        while not database_rows(drill_db, "SELECT 1 FROM usuarios WHERE username = 'nuevo'"):
            assert writer.poll() is None, "the CLI ended before its COMMIT was seen"
            assert time.monotonic() < deadline, "the CLI never committed"
            time.sleep(0.005)
        time.sleep(0.2)  # past COMMIT: now it waits on the paused Redis for its bump
        assert writer.poll() is None, "the CLI was not waiting on Redis"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        control.execute_command("CLIENT", "UNPAUSE")
    resumed = time.monotonic()

    time.sleep(max(0.0, CHECK_MS / 1000 + 1.0 - (time.monotonic() - resumed)))
    answers = spread_get(server, path, admin)
    assert statuses(answers) == {200}
    totals = {clientes(r) for r in answers}
    assert totals == {before + 1}, (totals, server.errors_logged())
