"""A worker told to stop (SIGTERM, max_requests recycling) ends its open streams cleanly.

gunicorn gives a stopping worker `graceful_timeout` for its in-flight requests; an
endless stream would hold it that long and then be cut. The stream must instead end
at once with a proper last chunk (the client saw `retry:` and reconnects), the worker
must exit well before the graceful timeout (10 s here), and a stream resumed with
`Last-Event-ID` on the replacement worker must send what changed meanwhile.
One worker, so the resumed stream is certainly served by the new one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.live import StreamReader, seed
from electro_isla_testing.servers import RedisServer
from tests.drills.test_sentinel_failover import wait_for
from tests.live.conftest import assert_resumed_with_only, start

MAX_REQUESTS = 20
GRACEFUL_TIMEOUT = 10  # the harness's --graceful-timeout


def sigterm(server: GunicornServer, pid: int, _reader: StreamReader) -> float:
    os.kill(pid, signal.SIGTERM)
    return time.monotonic()


def max_requests(server: GunicornServer, _pid: int, reader: StreamReader) -> float:
    """Ordinary requests until the worker's count reaches max_requests (no jitter); the
    time the last one the old worker served was answered (the next waits for the new one,
    in the background)."""
    answered: list[float] = []

    def ordinary() -> None:
        for _ in range(MAX_REQUESTS):
            requests.get(f"{server.url}/healthz", timeout=60)
            answered.append(time.monotonic())

    threading.Thread(target=ordinary, daemon=True).start()
    reader.ended.wait(GRACEFUL_TIMEOUT + 5)
    before_end = [t for t in answered if t < (reader.ended_at or time.monotonic())]
    assert before_end, "the stream ended before any ordinary request was answered"
    return before_end[-1]


@pytest.mark.parametrize("stop_worker", [sigterm, max_requests])
def test_a_stream_ends_cleanly_when_its_worker_stops_and_resumes_on_the_new_one(
    fresh_db, stop_worker
):
    redis = RedisServer().start()
    server = start(
        fresh_db,
        redis.url,
        workers=1,
        GUNICORN_MAX_REQUESTS=str(MAX_REQUESTS),
        GUNICORN_MAX_REQUESTS_JITTER="0",
    )
    try:
        site = seed(fresh_db, server.url)
        reader = StreamReader(site.base, site.admin).start()
        try:
            last = reader.take(4)[-1]
            old = server.worker_serving(reader.local_port)
            told = stop_worker(server, old, reader)
            assert reader.ended.wait(5), "the stream outlived its worker's stop by 5 s"
            assert reader.ended_at is not None
            assert reader.ended_at - told < 3, f"ended {reader.ended_at - told:.1f}s after"
            assert reader.clean_end, "the stream was cut, not ended"
            assert reader.retries, "no retry: hint before the end"
            reader.close()  # a client that saw the end hangs up (and reconnects)
            wait_for(lambda: old not in server.worker_pids(), GRACEFUL_TIMEOUT + 5, "the exit")
            exited = time.monotonic() - told
        finally:
            reader.close()
        assert exited < GRACEFUL_TIMEOUT / 2, (
            f"the worker took {exited:.1f}s to exit: {server.log_tail()}"
        )
        wait_for(lambda: len(server.worker_pids()) == 1, 20, "the replacement worker")
        # What changes while the client is away: productos only (one product's stock).
        site.set_stock(site.producto_ids[1], 777)
        resumed = StreamReader(site.base, site.admin, last_event_id=last.id).start(timeout=30)
        try:
            assert server.worker_serving(resumed.local_port) != old
            assert_resumed_with_only(resumed, site.producto_ids[1], 777)
        finally:
            resumed.close()
    finally:
        server.stop()
        redis.stop()
