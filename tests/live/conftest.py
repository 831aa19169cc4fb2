"""Live statistics on real servers: PostgreSQL, Redis the test may stop, 3 gunicorn workers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from electro_isla_testing.databases import create_database
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.live import Site, StreamReader, seed
from electro_isla_testing.servers import PostgresServer, RedisServer

_names = itertools.count()
LIVE_ENV = {
    "LIVE_MAX_WAITERS": "12",
    "LIVE_AUTH_CHECK_SECONDS": "1",
    "LIVE_HEARTBEAT_SECONDS": "2",
    "CACHE_CIRCUIT_RESET_SECONDS": "0.5",
    "GUNICORN_ACCESS_LOG": "/dev/null",
}


@pytest.fixture(scope="package")
def live_pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@dataclass
class Running:
    redis: RedisServer
    server: GunicornServer
    site: Site


def start(database_url: str, redis_url: str | None, workers: int = 3, **env: str) -> GunicornServer:
    server = GunicornServer(
        database_url, redis_url, workers=workers, threads=16, use_project_config=True
    )
    server.env.update(LIVE_ENV, CACHE_PENDING_DIR=str(server.tmp / "pending"), **env)
    return server.start()


@pytest.fixture(scope="package")
def live(live_pg: PostgresServer) -> Iterator[Running]:
    """One API for most tests (package scope keeps the wall time modest)."""
    url = create_database(live_pg, f"live_{next(_names)}")
    redis = RedisServer().start()
    server = start(url, redis.url)
    try:
        yield Running(redis, server, seed(url, server.url))
    finally:
        server.stop()
        redis.stop()


def assert_resumed_with_only(resumed: StreamReader, producto_id: int, stock: int) -> None:
    """A stream resumed after a stock change sends productos with it, and nothing else."""
    event = resumed.next(timeout=5)
    assert event.name == "productos"
    stocks = {p["id"]: p["stock"] for p in event.data["productos_mas_rentables"]}
    assert stocks[producto_id] == stock
    time.sleep(1.0)
    assert resumed.events.empty(), "only the statistic that changed is sent"


@pytest.fixture
def fresh_db(live_pg: PostgresServer) -> str:
    return create_database(live_pg, f"live_{next(_names)}")
