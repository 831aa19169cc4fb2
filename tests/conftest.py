"""Fixtures: real PostgreSQL and Redis for every run.

Each run gets its own database (a private server started from the installed
binaries, or a fresh database on TEST_DATABASE_URL's server) and its own Redis
keyspace (a private server, or a unique key prefix on TEST_REDIS_URL's).
Everything is removed at the end of the run.

- `app`: the app on PostgreSQL + Redis, tables emptied after the test.
- `sqlite_app`: the embedded default (a SQLite file + in-process cache);
  `make_sqlite_app(**overrides)` for more instances on that file, `sqlite_settings`
  for a test that builds its own.
- `db`: an app context on `app`, yielding the Flask-SQLAlchemy object.
- `client`, `runner`: Flask's test client and CLI runner for `app`.
- `make_app(**overrides)`: another app instance on the same database and Redis
  (two of them stand for two worker processes).
- `redis_mode_app`: `app` parametrized over a single Redis and a private
  3-master Redis Cluster (`redis_cluster_url`, started on first use).
"""

from __future__ import annotations

import gc
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import psycopg
import pytest
import redis as redis_lib
from flask import Flask
from sqlalchemy import make_url, text

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla.estadisticas.models import PENDIENTES
from electro_isla.extensions import db as _db
from electro_isla_testing.servers import PostgresServer, RedisClusterServers, RedisServer

RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count()


@pytest.fixture
def no_gc_pauses() -> Iterator[None]:
    """No full garbage collection inside a test that times what a server outage costs.

    The earlier tests' garbage (apps, engines, pools, each with finalizers) is
    freed before the test and the collector is off during it: a collection that
    started inside a timed request once made it 1.4 s on a loaded CI machine,
    where the claim under test is about Redis waits (about 0.2 s).
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    server = None
    if given:
        admin_url = make_url(given).set(drivername="postgresql+psycopg")
    else:
        server = PostgresServer()
        admin_url = make_url(server.start())
    dbname = f"ei_test_{RUN_ID}"
    conninfo = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = admin_url.set(database=dbname).render_as_string(hide_password=False)
    yield url
    if server is not None:
        server.cleanup()
        return
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        client = redis_lib.Redis.from_url(given)
        for key in client.scan_iter(match=f"ei{RUN_ID}*", count=1000):
            client.unlink(key)
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A private 3-master Redis Cluster on loopback, for the whole run (started on first use)."""
    servers = RedisClusterServers().start()
    yield servers.url
    servers.stop()


@pytest.fixture(params=["standalone", "cluster"])
def redis_mode(request) -> dict[str, Any]:
    """App settings for a single Redis, then for a 3-master Redis Cluster."""
    if request.param == "cluster":
        # The test cluster has no replicas: nothing could acknowledge a WAIT.
        url = request.getfixturevalue("redis_cluster_url")
        return {"REDIS_MODE": "cluster", "REDIS_URL": url, "CACHE_WAIT_REPLICAS": 0}
    return {}


@pytest.fixture
def redis_mode_app(redis_mode: dict[str, Any], make_app: Callable[..., Flask]) -> Flask:
    """`app`, once on a single Redis and once on a 3-master Redis Cluster."""
    return make_app(**redis_mode)


@pytest.fixture(scope="session")
def _schema(pg_url: str) -> str:
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": pg_url, "REDIS_URL": None})
    migrate_schema(app)
    return pg_url


def migrate_schema(app: Flask) -> None:
    """The schema as production gets it: the migrations, triggers included."""
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])
        _db.engine.dispose()


def unique_prefix() -> str:
    return f"ei{RUN_ID}t{next(_counter)}"


def dispose(apps: list[Flask], first: Callable[[], None] | None = None) -> None:
    """A test's app instances at teardown: sessions removed, connections closed; `first`
    runs in the first app's context before its connections go (emptying the tables)."""
    for app in apps:
        with app.app_context():
            _db.session.remove()
            if first is not None and app is apps[0]:
                first()
            _db.engine.dispose()


@pytest.fixture
def make_app(_schema: str, redis_url: str, tmp_path) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []
    prefix = unique_prefix()

    def factory(**overrides: Any) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": _schema,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": prefix,
            "LOG_DIR": str(tmp_path / "logs"),
            # Production's 0.25 s trips the breaker when a loaded CI machine
            # stalls; outage tests set their own short timeout explicitly.
            "REDIS_SOCKET_TIMEOUT": 2.0,
            # The cross-host pending check (one query per interval) would show up, by
            # timing, in the tests that count statements; tests of that check set it.
            "CACHE_PENDING_CHECK_MS": 60_000,
        }
        settings.update(overrides)
        app = create_app(TestConfig, settings)
        apps.append(app)
        return app

    yield factory

    def truncate() -> None:
        tables = ", ".join(t.name for t in reversed(_db.metadata.sorted_tables))
        with _db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    dispose(apps, first=truncate)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may kill, pause or restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


def sqlite_settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The embedded default: a SQLite file under `tmp_path`, the in-process cache."""
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "REDIS_URL": None,
        "CACHE_KEY_PREFIX": unique_prefix(),
        "LOG_DIR": str(tmp_path / "logs"),
        **overrides,
    }


def create_sqlite_views() -> None:
    """The views migration 0017 makes on SQLite (each its delta table), which
    `create_all` does not: the statistics read them."""
    with _db.engine.begin() as conn:
        for vista, delta in PENDIENTES.items():
            cols = ", ".join(c.name for c in vista.columns)
            sql = f"CREATE VIEW {vista.name} AS SELECT {cols} FROM {delta.name}"  # noqa: S608
            conn.exec_driver_sql(sql)  # names from the models


@pytest.fixture
def make_sqlite_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Apps on one SQLite file, each with its own in-process cache (two stand for two
    worker processes). The first one creates the schema: from the migrations, or with
    `create_all=True` from the models."""
    apps: list[Flask] = []

    def factory(*, create_all: bool = False, **overrides: Any) -> Flask:
        app = create_app(TestConfig, sqlite_settings(tmp_path, **overrides))
        if not apps and create_all:
            with app.app_context():
                _db.create_all()
                create_sqlite_views()
        elif not apps:
            migrate_schema(app)
        apps.append(app)
        return app

    yield factory
    dispose(apps)


@pytest.fixture
def sqlite_app(make_sqlite_app: Callable[..., Flask]) -> Flask:
    return make_sqlite_app()


@pytest.fixture
def db(app: Flask):
    with app.app_context():
        yield _db
        _db.session.remove()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()
