"""The console under test: gunicorn on a private PostgreSQL database and a private Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from electro_isla_testing.consola import create_database, drop_database, seed
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.servers import RedisServer


@pytest.fixture(scope="module")
def consola_db(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded demo store in a database of this module's own, on the suite's server."""
    name = f"consola_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_url, name)
    seed(url, Path(tmp_path_factory.mktemp("consola-seed")))
    yield url
    drop_database(pg_url, name)


@pytest.fixture
def serve(consola_db: str) -> Iterator[Callable[..., tuple[GunicornServer, RedisServer]]]:
    """Start gunicorn (2 workers x 8 threads) on the module's database and a Redis of its own.

    One per test: a console's closed stream keeps its per-usuario slot until its lease
    ends, so a server shared across tests would hand the next test a 429.
    """
    started: list[tuple[GunicornServer, RedisServer]] = []

    def start(project_config: bool = False, **env: str) -> tuple[GunicornServer, RedisServer]:
        """`project_config`: gunicorn.conf.py's hooks too (a stopping worker ends its streams)."""
        redis = RedisServer().start()
        server = GunicornServer(
            consola_db,
            redis.url,
            workers=2,
            threads=8,
            extra_env=env,
            use_project_config=project_config,
        )
        started.append((server, redis))
        server.start(timeout=90)  # a loaded CI machine: gunicorn's import can take a while
        return server, redis

    yield start
    for server, redis in started:
        server.stop()
        redis.stop()


@pytest.fixture
def console(serve) -> GunicornServer:
    server, _ = serve()
    return server
