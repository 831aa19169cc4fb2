"""Registration throttling: an anonymous client cannot create accounts without bound."""

from __future__ import annotations

import pytest

from electro_isla import create_app
from electro_isla.cache import shared_redis
from electro_isla.config import Config, TestConfig
from electro_isla.config_values import Misconfigured
from electro_isla.usuarios.models import Usuario
from tests.auth.support import count


def register(client, n: int, ip: str, username: str | None = None):
    body = {
        "username": username or f"nuevo{n}",
        "email": f"nuevo{n}@example.test",
        "password": "password-123",
    }
    return client.post("/api/auth/register/", json=body, environ_base={"REMOTE_ADDR": ip})


def assert_429(response, window: int) -> None:
    assert response.status_code == 429, response.json
    body = response.json
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert "registered from this address" in body["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= window


def test_the_default_is_ten_accounts_an_hour_per_ip():
    assert (Config.REGISTER_MAX_PER_IP, Config.REGISTER_WINDOW_SECONDS) == (10, 3600)


def test_one_ip_registers_at_most_the_maximum_and_the_refused_one_writes_nothing(make_app):
    app = make_app(REGISTER_MAX_PER_IP=3, REGISTER_WINDOW_SECONDS=60)
    client = app.test_client()
    for n in range(3):
        assert register(client, n, "10.20.0.1").status_code == 201
    assert_429(register(client, 3, "10.20.0.1"), 60)
    assert count(app, Usuario) == 3
    # Another address is not affected.
    assert register(client, 4, "10.20.0.2").status_code == 201


def test_an_ipv6_client_cannot_register_more_by_changing_address_in_its_64(make_app):
    app = make_app(REGISTER_MAX_PER_IP=2, REGISTER_WINDOW_SECONDS=60)
    client = app.test_client()
    for n in range(2):
        assert register(client, n, f"2001:db8:20::{n + 1}").status_code == 201
    assert_429(register(client, 2, "2001:db8:20::abcd"), 60)
    assert count(app, Usuario) == 2
    assert register(client, 3, "2001:db8:21::1").status_code == 201  # another /64


def test_a_refused_duplicate_keeps_its_place(make_app):
    """Probing for taken usernames or emails costs places like real registrations."""
    app = make_app(REGISTER_MAX_PER_IP=2, REGISTER_WINDOW_SECONDS=60)
    client = app.test_client()
    assert register(client, 0, "10.21.0.1").status_code == 201
    assert register(client, 1, "10.21.0.1", username="nuevo0").status_code == 409
    assert_429(register(client, 2, "10.21.0.1"), 60)


def test_the_window_is_shared_by_workers_and_expires_in_redis(make_app):
    first = make_app(REGISTER_MAX_PER_IP=3, REGISTER_WINDOW_SECONDS=60)
    second = make_app(REGISTER_MAX_PER_IP=3, REGISTER_WINDOW_SECONDS=60)
    assert register(first.test_client(), 0, "10.22.0.1").status_code == 201
    assert register(second.test_client(), 1, "10.22.0.1").status_code == 201
    assert register(first.test_client(), 2, "10.22.0.1").status_code == 201
    assert_429(register(second.test_client(), 3, "10.22.0.1"), 60)
    prefix = first.config["CACHE_KEY_PREFIX"]
    redis = shared_redis(first)
    keys = [k.decode() for k in redis.scan_iter(match=f"{prefix}:ratelimit:{{register}}:*")]
    assert keys and all(0 < redis.pttl(k) <= 60_000 for k in keys), keys


def test_without_redis_each_process_still_throttles(make_sqlite_app):
    app = make_sqlite_app(REGISTER_MAX_PER_IP=2)
    client = app.test_client()
    assert register(client, 0, "10.23.0.1").status_code == 201
    assert register(client, 1, "10.23.0.1").status_code == 201
    assert_429(register(client, 2, "10.23.0.1"), 3600)
    assert count(app, Usuario) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTER_MAX_PER_IP", "0"),
        ("LOGIN_MAX_FAILURES", "0"),
        ("REGISTER_WINDOW_SECONDS", "0"),
    ],
)
def test_a_limit_that_would_refuse_no_place_is_refused_at_start(monkeypatch, name, value):
    """0 looked like a way to close registration; it made every registration a 500
    (and, with Redis, opened the cache's breaker): found in review."""
    if name.startswith("REGISTER"):
        monkeypatch.setenv(name, value)  # as an operator would set it
        overrides = {}
    else:
        overrides = {name: int(value)}  # not read from the environment
    with pytest.raises(Misconfigured, match=name):
        create_app(TestConfig, overrides)


def test_the_429_and_its_retry_after_are_in_the_openapi_document(app):
    doc = app.test_client().get("/api/openapi.json").json
    refused = doc["paths"]["/api/auth/register/"]["post"]["responses"]["429"]
    assert "Retry-After" in refused.get("headers", {}), refused
