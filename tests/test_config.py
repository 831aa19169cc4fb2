"""Production refuses configurations that are insecure or silently wrong."""

from __future__ import annotations

import runpy
import secrets
import signal
import subprocess
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token

import electro_isla
from electro_isla import create_app
from electro_isla.config import ProdConfig
from electro_isla.config_values import Misconfigured
from electro_isla.extensions import db as _db
from electro_isla_testing.factories import UsuarioFactory
from electro_isla_testing.gunicorn import COMMAND, PROJECT_DIR, deployment_env, start_once
from electro_isla_testing.servers import free_port

# What .env.example shipped: anyone who read the repository could sign tokens with it.
PUBLISHED_KEY = "change-me-to-a-long-random-string-before-any-real-deployment"
GOOD_KEY = "Jq3v9Zr1xWm7Kp2LbT8cYn4Hs6Fd0GaE5uRiOoPl"


@pytest.fixture
def prod_env(monkeypatch, tmp_path):
    """The environment production reads, on a throwaway SQLite file."""
    for var in ("REDIS_URL", "REDIS_MODE", "REDIS_SENTINELS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.db'}")
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    return monkeypatch


def prod_app():
    return create_app(ProdConfig)


@pytest.mark.parametrize(
    "key",
    [
        PUBLISHED_KEY,
        "changeme-changeme-changeme-changeme-changeme",
        "my-super-secret-signing-key-for-the-store-api",
        "an-example-key-that-is-easily-long-enough-to-pass",
        "short-but-random-7Hq2",
        "a" * 64,
    ],
)
def test_production_refuses_a_placeholder_or_short_key(prod_env, key):
    prod_env.setenv("SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="refuses to start: SECRET_KEY"):
        prod_app()


def test_a_token_forged_with_the_published_key_never_meets_a_running_app(prod_env):
    forged = pyjwt.encode(
        {"sub": "1", "type": "access", "jti": "x", "exp": 4_102_444_800, "rol": "admin"},
        PUBLISHED_KEY,
        algorithm="HS256",
    )
    # The published key cannot be what production signs with...
    prod_env.setenv("SECRET_KEY", PUBLISHED_KEY)
    with pytest.raises(RuntimeError):
        prod_app()
    # ...and an app with a real key does not take the forgery for an admin.
    prod_env.setenv("SECRET_KEY", GOOD_KEY)
    app = prod_app()
    with app.app_context():
        _db.create_all()
        UsuarioFactory(rol="admin")
    response = app.test_client().get(
        "/api/admin/cache/stats/", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    with app.app_context():
        _db.engine.dispose()


def test_a_generated_key_is_accepted():
    from electro_isla.config import secret_key_problem

    assert secret_key_problem(secrets.token_urlsafe(48)) is None
    assert secret_key_problem(GOOD_KEY) is None


def test_several_workers_without_a_shared_store_refuse_to_start(prod_env):
    prod_env.setenv("WEB_CONCURRENCY", "3")
    with pytest.raises(RuntimeError, match="no shared store"):
        prod_app()
    prod_env.setenv("WEB_CONCURRENCY", "1")
    assert prod_app().config["WEB_CONCURRENCY"] == 1
    prod_env.setenv("WEB_CONCURRENCY", "3")
    prod_env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert prod_app().config["REDIS_URL"]


def test_sentinel_mode_is_a_shared_store_without_redis_url(prod_env):
    prod_env.setenv("WEB_CONCURRENCY", "4")
    prod_env.setenv("REDIS_MODE", "sentinel")
    with pytest.raises(RuntimeError, match="REDIS_SENTINELS"):
        prod_app()
    prod_env.setenv("REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2:26379")
    assert prod_app().config["REDIS_MODE"] == "sentinel"


def production_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A production gunicorn's environment on a SQLite file, nothing else inherited."""
    return deployment_env(
        APP_ENV="production",
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}",
        LOG_DIR=str(tmp_path / "logs"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        BIND=f"127.0.0.1:{free_port()}",
        **settings,
    )


def test_gunicorn_with_several_workers_and_no_redis_does_not_serve(tmp_path):
    """gunicorn tells the app its real worker count (here from -w, not WEB_CONCURRENCY)."""
    result = start_once(production_env(tmp_path, GUNICORN_CMD_ARGS="--workers 2"))
    assert result.returncode != 0
    assert "no shared store" in result.stderr


@pytest.mark.parametrize("env_var", ["APP_ENV", "FLASK_ENV"])
def test_a_ttin_past_one_worker_without_a_shared_store_adds_none(tmp_path, env_var):
    """An operator's probe: `kill -TTIN` added a second worker to a production gunicorn
    without Redis, which the start-time rule refuses; a logged-out token then still
    worked on the other worker."""
    env = production_env(tmp_path, WEB_CONCURRENCY="1")
    del env["APP_ENV"]
    # FLASK_ENV as the app reads it too: the first hook read APP_ENV alone, let the
    # worker in and the worker's refusal stopped the whole server (a reviewer).
    env[env_var] = " Production " if env_var == "FLASK_ENV" else "production"
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            COMMAND,
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTTIN)
        deadline = time.monotonic() + 10
        while "not adding a worker" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(1.5)  # what a spawned worker would take to show
        workers = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 1, log.read_text()
        assert log.read_text().count("Booting worker") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("var", "value", "said"),
    [
        ("APP_ENV", "prod", "APP_ENV"),
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
        ("CACHE_TTL_FOO", "1", "CACHE_TTL_FOO"),
        ("SECRET_KEY", "short", "production refuses to start: SECRET_KEY"),
        ("REDIS_MODE", "clusterr", "REDIS_MODE"),
        ("METRICS_ALLOW", "10.0.0.x", "METRICS_ALLOW"),
    ],
)
def test_gunicorn_refuses_a_setting_in_one_line_and_stops(tmp_path, var, value, said):
    """An operator's probe: a setting that cannot work was named on the last line of a
    31-line traceback, once per worker (96 lines with 2 workers). One worker here: when
    two fail to boot at once, gunicorn's master can meet the second while halting for
    the first and end in its own HaltServer traceback, exit 1 (seen once in CI)."""
    env = production_env(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:1/0",  # never reached: the start stops before
        WEB_CONCURRENCY="1",
    )
    env[var] = value
    result = start_once(env)
    assert result.returncode == 3, result.stderr[-2000:]  # gunicorn's "failed to boot"
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"electro_isla cannot start: {said}" in result.stderr


def test_only_a_settings_error_is_said_in_one_line(monkeypatch):
    """wsgi.py turned any ValueError raised while the app was built into the one-line
    refusal, so in production a bug there lost its traceback: only a setting's error
    (Misconfigured) and a production refusal are said that way now."""

    def bug(*args: object) -> None:
        raise ValueError("a bug, not a setting")

    def setting(*args: object) -> None:
        raise Misconfigured("TIMEZONE must be an IANA time zone name")

    monkeypatch.setattr(electro_isla, "create_app", bug)
    with pytest.raises(ValueError, match="a bug"):
        runpy.run_path(str(PROJECT_DIR / "wsgi.py"))
    monkeypatch.setattr(electro_isla, "create_app", setting)
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(PROJECT_DIR / "wsgi.py"))
    assert stopped.value.code == 3


def test_production_closes_metrics_to_all_but_loopback_by_default(prod_env):
    prod_env.delenv("METRICS_ALLOW", raising=False)
    app = prod_app()
    assert app.config["METRICS_ALLOW"] == "127.0.0.1,::1"
    client = app.test_client()
    far = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert far.status_code == 403 and far.json["code"] == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    # Set but empty (an .env line left blank), or only commas, is closed too, not open
    # to everyone (the comma-only value got past the blank check and listed nobody,
    # which the allow check read as "anyone": a helper's reading of the code).
    for value in ("", ",", " , ,"):
        prod_env.setenv("METRICS_ALLOW", value)
        blank = prod_app().test_client()
        far = blank.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert far.status_code == 403, value


def test_production_opens_metrics_only_to_what_is_listed(prod_env):
    prod_env.setenv("METRICS_ALLOW", "10.0.0.0/8")
    client = prod_app().test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403


@pytest.mark.parametrize("zona", ["Mars/Base", "utc", "America", "zone.tab", "../etc/passwd"])
def test_an_unknown_timezone_refuses_to_start(prod_env, zona):
    """It booted, /readyz said ok, and every statistics read was a 500 (a probe's find)."""
    prod_env.setenv("TIMEZONE", zona)
    with pytest.raises(Misconfigured, match="TIMEZONE must be an IANA time zone"):
        prod_app()
    prod_env.setenv("APP_ENV", "development")
    with pytest.raises(Misconfigured, match="TIMEZONE must be an IANA time zone"):
        create_app()


def test_a_timezone_name_is_accepted(prod_env):
    prod_env.setenv("TIMEZONE", "America/Havana")
    assert prod_app().config["TIMEZONE"] == "America/Havana"


def test_the_access_token_lifetime_is_set_in_seconds(prod_env):
    prod_env.setenv("ACCESS_TOKEN_SECONDS", "120")
    app = prod_app()
    with app.app_context():
        claims = pyjwt.decode(
            create_access_token(identity="1"), options={"verify_signature": False}
        )
    assert claims["exp"] - claims["iat"] == 120
    # 300000000000 passed the start and made every login a 500 (OverflowError; a probe).
    for bad in ("29", "0", "-5", "86401", "300000000000"):
        prod_env.setenv("ACCESS_TOKEN_SECONDS", bad)
        with pytest.raises(Misconfigured, match="ACCESS_TOKEN_SECONDS must be between 30 and"):
            prod_app()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("ACCESS_TOKEN_SECONDS", "abc"),
        ("ACCESS_TOKEN_SECONDS", "1e3"),
        ("REGISTER_MAX_PER_IP", "five"),
        ("REDIS_SOCKET_TIMEOUT", "fast"),
        ("CACHE_TTL_PRODUCTO", "abc"),
    ],
)
def test_a_value_that_is_not_a_number_names_its_variable(prod_env, var, value):
    """It stopped with int()'s bare "invalid literal for int() with base 10: 'abc'"."""
    prod_env.setenv(var, value)
    with pytest.raises(Misconfigured, match=f"^{var}: '{value}' is not a valid"):
        prod_app()


def test_a_negative_cache_ttl_refuses_to_start(prod_env):
    """-5 was taken: every read of that name then a MISS, its cache silently off."""
    prod_env.setenv("CACHE_TTL_PRODUCTO", "-5")
    with pytest.raises(Misconfigured, match="CACHE_TTL_PRODUCTO must be 0 or more"):
        prod_app()


@pytest.mark.parametrize("name", ["prod", "Production2", "staging"])
def test_an_unknown_app_env_refuses_to_start(prod_env, name):
    """APP_ENV=prod ran in development: no production refusal, a random SECRET_KEY."""
    prod_env.setenv("APP_ENV", name)
    with pytest.raises(
        Misconfigured, match="APP_ENV must be one of development, testing, production"
    ):
        create_app()
    prod_env.setenv("APP_ENV", " Production ")  # spaces and case are no typo
    assert create_app().config["ENV_NAME"] == "production"


@pytest.mark.parametrize("value", ["*", "api.tienda.example, *"])
def test_trusted_hosts_star_is_any_host(prod_env, value):
    """Django's `*`: it started, then refused every request, /healthz included (a probe)."""
    prod_env.setenv("TRUSTED_HOSTS", value)
    assert prod_app().config["TRUSTED_HOSTS"] is None


def test_trusted_hosts_are_names_and_ipv4_addresses(prod_env):
    prod_env.setenv("TRUSTED_HOSTS", "API.tienda.example,.tienda.example,10.0.0.5,localhost")
    hosts = prod_app().config["TRUSTED_HOSTS"]
    assert hosts == ["api.tienda.example", ".tienda.example", "10.0.0.5", "localhost"]


@pytest.mark.parametrize(
    "value", ["https://shop.example", "shop.example:443", "[::1]", "::1", "a b"]
)
def test_a_trusted_host_no_request_could_match_refuses_to_start(prod_env, value):
    """They started, then refused every request (werkzeug cuts entries at a colon)."""
    prod_env.setenv("TRUSTED_HOSTS", value)
    with pytest.raises(Misconfigured, match="TRUSTED_HOSTS: .* is not a host name"):
        prod_app()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        # Each started before, and then failed where it named nothing (an operator's probe).
        ("REDIS_URL", "127.0.0.1:6392", "^REDIS_URL is not a Redis URL"),
        ("REDIS_URL", " redis://127.0.0.1:6392/0", "^REDIS_URL is not a Redis URL"),
        ("REDIS_URL", "redis://:hunter2-pass@127.0.0.1:abc/0", "^REDIS_URL is not a Redis URL"),
        ("REDIS_SOCKET_TIMEOUT", "0", "^REDIS_SOCKET_TIMEOUT must be more than 0"),
        ("REDIS_SOCKET_TIMEOUT", "-1", "^REDIS_SOCKET_TIMEOUT must be 0 or more"),
        ("DATABASE_URL", "postgresx://u@h/db", "^DATABASE_URL is not a database URL"),
        ("DATABASE_URL", "not a url", "^DATABASE_URL is not a database URL"),
        ("LOG_FORMAT", "xml", "^LOG_FORMAT must be one of text, json"),
        ("LOG_LEVEL", "LOUD", "^LOG_LEVEL must be one of"),
        ("WEB_CONCURRENCY", "0", "^WEB_CONCURRENCY must be more than 0"),
        ("LIVE_HEARTBEAT_SECONDS", "nan", "^LIVE_HEARTBEAT_SECONDS: 'nan' is not a finite"),
        ("REDIS_URL", "redis://h:7000,h:x", "^REDIS_URL is not a Redis URL"),
        ("CACHE_ENABLED", "maybe", "^CACHE_ENABLED: 'maybe' is not one of"),
        ("CACHE_PENDING_CHECK_MS", "-100", "^CACHE_PENDING_CHECK_MS must be 0 or more"),
        ("CACHE_CIRCUIT_RESET_SECONDS", "-5", "^CACHE_CIRCUIT_RESET_SECONDS must be 0 or more"),
        ("LIVE_MAX_WAIT", "-5", "^LIVE_MAX_WAIT must be 0 or more"),
        ("LIVE_MAX_WAITERS", "-1", "^LIVE_MAX_WAITERS must be 0 or more"),
        ("CACHE_TTL_PRODCTO", "30", "^CACHE_TTL_PRODCTO: no cached name 'prodcto'"),
    ],
)
def test_a_value_that_cannot_work_refuses_to_start_naming_its_variable(
    prod_env, var, value, message
):
    prod_env.setenv(var, value)
    with pytest.raises(Misconfigured, match=message) as refused:
        prod_app()
    assert "hunter2" not in str(refused.value)  # a URL's password is never echoed


def test_a_postgres_scheme_database_url_is_read_as_postgresql(prod_env):
    """Heroku's and many tutorials' form; it was a NoSuchModuleError naming nothing."""
    prod_env.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/electro_isla")
    app = prod_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql://postgres@127.0.0.1:5432/electro_isla"
    )


@pytest.mark.parametrize(("value", "enabled"), [("yes", True), ("OFF", False), ("0", False)])
def test_a_boolean_is_read_from_its_words(prod_env, value, enabled):
    prod_env.setenv("CACHE_ENABLED", value)
    assert prod_app().config["CACHE_ENABLED"] is enabled


@pytest.mark.parametrize(
    ("env", "value"),
    [
        # Forms documented for a cluster's startup nodes (shared_store/clients.py).
        ({"REDIS_MODE": "cluster", "REDIS_URL": "10.0.0.1:7000,10.0.0.2:7000"}, None),
        ({"REDIS_MODE": "cluster", "REDIS_URL": "redis://10.0.0.1:7000,10.0.0.2:7000"}, None),
        # Sentinel mode does not read REDIS_URL: a leftover value is not checked.
        (
            {"REDIS_MODE": "sentinel", "REDIS_SENTINELS": "10.0.0.1:26379", "REDIS_URL": "x"},
            None,
        ),
        ({"LOG_LEVEL": "warn"}, "warn"),  # names logging knows, as setLevel takes them
        ({"LOG_LEVEL": "FATAL"}, "FATAL"),
    ],
)
def test_values_that_work_still_start(prod_env, env, value):
    for var, raw in env.items():
        prod_env.setenv(var, raw)
    app = prod_app()
    if value is not None:
        assert app.config["LOG_LEVEL"] == value
