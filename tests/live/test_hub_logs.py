"""What the live hub logs while Redis is down: one line per outage, not one a second."""

from __future__ import annotations

import logging
import time

import pytest

from electro_isla.live import live_of
from electro_isla_testing.servers import RedisServer
from tests.helpers import user_with_role


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


def test_a_deferred_refresh_does_not_spin_the_hub_while_redis_is_down(
    make_app, own_redis: RedisServer
):
    """A change to a statistic read lately, closer than LIVE_MIN_INTERVAL_MS to its last
    fetch, is fetched when the interval ends (Interest.due). When Redis was unreachable
    by then, that due stayed in the past and the hub refreshed in a loop with no wait:
    a probe saw three gunicorn workers at 50 % CPU each while its Redis was paused."""
    app = make_app(
        REDIS_URL=own_redis.url,
        REDIS_SOCKET_TIMEOUT=0.2,
        LIVE_READ_REFRESH_SECONDS=60,
        LIVE_MIN_INTERVAL_MS=1500,
    )
    hub = live_of(app).hub
    refreshes: list[float] = []
    refresh = hub.refresh

    def counted() -> bool:
        refreshes.append(time.monotonic())
        return refresh()

    hub.refresh = counted
    try:
        hub.ensure_running()
        time.sleep(0.5)  # subscribed
        hub.interest.noted_read("usuarios")  # a dashboard polls it
        user_with_role(app, "cliente")  # a change: fetched at once
        deadline = time.monotonic() + 5
        while "usuarios" not in hub.interest.fetched_at and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "usuarios" in hub.interest.fetched_at
        user_with_role(app, "cliente")  # another, within the interval: deferred
        deadline = time.monotonic() + 2
        while not hub.interest.due and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.interest.due, "the second change was not deferred"
        own_redis.kill()
        time.sleep(max(0.0, hub.interest.due - time.monotonic()) + 0.5)  # due, Redis down
        before = len(refreshes)
        time.sleep(2.0)
        # One refresh per recheck (0.5 s) and per hint, not thousands.
        assert len(refreshes) - before <= 2.0 / hub.recheck + 3, len(refreshes) - before
    finally:
        hub.stop()
