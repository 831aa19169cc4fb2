"""What the live hub logs while Redis is down: one line per outage, not one a second."""

from __future__ import annotations

import logging
import time

import pytest

from electro_isla.live import live_of
from electro_isla_testing.servers import RedisServer


def lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "electro_isla.live")


def test_a_redis_outage_is_one_warning_and_the_return_another(
    make_app, own_redis: RedisServer, caplog
):
    """A helper's probe saw ~25 "LIVE subscribe failed" lines per worker per outage (one a
    second while it lasted), beside the breaker's one line per interval."""
    app = make_app(REDIS_URL=own_redis.url, REDIS_SOCKET_TIMEOUT=0.2)
    hub = live_of(app).hub
    caplog.set_level(logging.INFO, logger="electro_isla.live")
    try:
        hub.ensure_running()
        time.sleep(0.5)  # subscribed
        own_redis.kill()
        time.sleep(4.5)  # four or five retries, a second apart
        assert lines(caplog, "LIVE subscribe failed") == 1, caplog.text
        own_redis.start()
        deadline = time.monotonic() + 5
        while not lines(caplog, "LIVE subscribed again") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lines(caplog, "LIVE subscribed again") == 1, caplog.text
        assert lines(caplog, "LIVE subscribe failed") == 1
    finally:
        hub.stop()
