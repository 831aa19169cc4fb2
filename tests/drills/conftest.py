"""Outage drills run on servers they own: a private PostgreSQL and Redis they may stop."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla_testing.databases import create_database, libpq_url
from electro_isla_testing.gunicorn import SECRET_KEY
from electro_isla_testing.servers import PostgresServer, RedisServer
from tests.conftest import dispose

_names = itertools.count()


@pytest.fixture(scope="module")
def drill_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this module only: drills stop and start it."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def drill_db(drill_pg: PostgresServer) -> str:
    return create_database(drill_pg, f"drill_{next(_names)}")


@pytest.fixture
def drill_redis(own_redis: RedisServer) -> RedisServer:
    """The drill's Redis: one of its own (tests/conftest.py), which it may stop."""
    return own_redis


@pytest.fixture
def drill_app(drill_db: str, drill_redis: RedisServer, tmp_path) -> Iterator[Callable[..., Flask]]:
    """An app on the drill servers, to seed data and sign tokens the gunicorn workers accept."""
    apps: list[Flask] = []

    def factory(prefix: str, **overrides: Any) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": drill_db,
            "REDIS_URL": drill_redis.url,
            "CACHE_KEY_PREFIX": prefix,
            "SECRET_KEY": SECRET_KEY,
            "JWT_SECRET_KEY": SECRET_KEY,
            "LOG_DIR": str(tmp_path / "logs"),
        }
        settings.update(overrides)
        app = create_app(TestConfig, settings)
        apps.append(app)
        return app

    yield factory
    dispose(apps)


def database_rows(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return list(conn.execute(sql))
