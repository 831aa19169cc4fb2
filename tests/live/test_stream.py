"""The event stream on 3 gunicorn workers and Redis: first events, changes, resume, ends."""

from __future__ import annotations

import time

import psycopg
import redis
import requests

from electro_isla.live.stream import RETRY_MS
from electro_isla_testing.databases import libpq_url
from electro_isla_testing.factories import PASSWORD
from electro_isla_testing.live import STATS, StreamReader, seed
from electro_isla_testing.servers import RedisServer
from tests.live.conftest import LIVE_ENV, Running, assert_resumed_with_only, start


def test_first_four_events_equal_the_four_get_bodies_then_an_order_within_1s(live: Running):
    site = live.site
    bodies = {stat: site.stat(stat).json() for stat in STATS}
    reader = StreamReader(site.base, site.admin).start()
    try:
        assert reader.status == 200
        assert reader.response_headers["Content-Type"].startswith("text/event-stream")
        assert reader.response_headers["X-Accel-Buffering"] == "no"
        first = reader.take(4)
        assert [e.name for e in first] == list(STATS)
        assert {e.name: e.data for e in first} == bodies
        before = bodies["reporte"]["resumen"]["total_pedidos"]
        ordered = time.monotonic()
        site.order()
        event = reader.until(
            lambda e: e.name == "reporte" and e.data["resumen"]["total_pedidos"] == before + 1,
            timeout=3,
        )
        assert event.at - ordered < 1.0, f"reporte event {event.at - ordered:.3f}s after the order"
    finally:
        reader.close()


def test_last_event_id_resumes_with_only_what_changed(live: Running):
    site = live.site
    reader = StreamReader(site.base, site.admin).start()
    last = reader.take(4)[-1]
    reader.close()
    site.set_stock(site.producto_ids[2], 4321)
    resumed = StreamReader(site.base, site.admin, last_event_id=last.id).start()
    try:
        assert_resumed_with_only(resumed, site.producto_ids[2], 4321)
    finally:
        resumed.close()
    # Unknown or malformed ids are ignored: everything is sent.
    again = StreamReader(site.base, site.admin, last_event_id="1-zz").start()
    try:
        assert [e.name for e in again.take(4)] == list(STATS)
    finally:
        again.close()


def test_a_resume_that_lacks_nothing_is_told_so_at_once(live: Running):
    """No event is due, so the first sign of life would be the heartbeat: a console
    took that silence for a buffering proxy and polled (see tests/consola)."""
    site = live.site
    headers = site.headers_for(site.trabajador_ids[4])  # streams of its own (4 per usuario)
    reader = StreamReader(site.base, headers).start()
    last = reader.take(4)[-1]
    reader.close()
    started = time.monotonic()
    with requests.get(
        f"{site.base}/api/admin/estadisticas/stream/",
        headers={**headers, "Last-Event-ID": last.id},
        stream=True,
        timeout=10,
    ) as resumed:
        lines = resumed.iter_lines(decode_unicode=True)
        assert next(lines) == f"retry: {RETRY_MS}"
        assert next(lines) == ""
        assert next(lines) == ": up to date"
    assert time.monotonic() - started < 1.0


def test_logout_ends_the_stream_within_5s(live: Running):
    site = live.site
    headers = site.headers_for(site.trabajador_ids[1])
    reader = StreamReader(site.base, headers).start()
    try:
        reader.take(4)
        out = requests.post(f"{site.base}/api/auth/logout/", headers=headers, timeout=10)
        assert out.status_code in (200, 204), out.text
        started = time.monotonic()
        assert reader.ended.wait(5), "the stream outlived the logout"
        assert time.monotonic() - started < 5
    finally:
        reader.close()


def test_a_logout_with_another_token_of_the_login_ends_the_stream(live: Running):
    """A reviewer: the test above streams with a token minted outside any login (its jti
    alone). Here the stream holds a login's first token and the logout presents the
    refreshed one: the login's entry (auth/tokens.py: revocation_keys) ends the stream."""
    site = live.site
    uid = site.trabajador_ids[8]
    with psycopg.connect(libpq_url(site.database_url)) as conn:
        (username,) = conn.execute("SELECT username FROM usuarios WHERE id = %s", (uid,)).fetchone()
    body = {"username": username, "password": PASSWORD}
    logged = requests.post(f"{site.base}/api/auth/login/", json=body, timeout=10)
    assert logged.status_code == 200, logged.text
    cookie = {"Cookie": f"refreshToken={logged.cookies['refreshToken']}"}
    refreshed = requests.post(f"{site.base}/api/auth/refresh/", headers=cookie, timeout=10)
    assert refreshed.status_code == 200, refreshed.text
    first = {"Authorization": f"Bearer {logged.json()['accessToken']}"}
    second = {"Authorization": f"Bearer {refreshed.json()['accessToken']}"}
    reader = StreamReader(site.base, first).start()
    try:
        reader.take(4)
        out = requests.post(f"{site.base}/api/auth/logout/", headers=second, timeout=10)
        assert out.status_code == 200, out.text
        assert reader.ended.wait(5), "the stream outlived its login's logout"
    finally:
        reader.close()


def test_demotion_ends_the_stream_within_5s(live: Running):
    site = live.site
    uid = site.trabajador_ids[2]
    reader = StreamReader(site.base, site.headers_for(uid)).start()
    try:
        reader.take(4)
        site.set_rol(uid, "mensajero")
        assert reader.ended.wait(5), "the stream outlived the demotion"
    finally:
        reader.close()


def test_a_fifth_stream_of_one_usuario_is_429(live: Running):
    site = live.site
    # A usuario no other test streams as: a closed stream keeps counting until its
    # worker notices (next heartbeat), so another test's streams must not be in the count.
    headers = site.headers_for(site.trabajador_ids[3])
    readers = [StreamReader(site.base, headers).start() for _ in range(4)]
    try:
        for reader in readers:
            assert reader.status == 200
        fifth = requests.get(
            f"{site.base}/api/admin/estadisticas/stream/", headers=headers, timeout=10
        )
        assert fifth.status_code == 429
        assert int(fifth.headers["Retry-After"]) > 0
        assert fifth.json()["code"] == 429
    finally:
        for reader in readers:
            reader.close()
    # Closed streams stop counting (their worker notices on the next heartbeat write).
    deadline = time.monotonic() + 8
    while True:
        again = StreamReader(site.base, headers).start()
        status = again.status
        again.close()
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200


def test_a_refused_stream_retried_after_retry_after_gets_in(fresh_db: str):
    """At the default heartbeat (10 s) a closed stream's worker notices at its second
    heartbeat write, up to 20 s after the close: `Retry-After: 15` (a helper's probe)
    sent the client back to a second 429. It is the lease's length now."""
    redis = RedisServer().start()
    server = start(fresh_db, redis.url, workers=1, LIVE_HEARTBEAT_SECONDS="10")
    try:
        site = seed(fresh_db, server.url)
        url = f"{site.base}/api/admin/estadisticas/stream/"
        readers = [StreamReader(site.base, site.admin).start() for _ in range(4)]
        for reader in readers:
            reader.take(4)
            reader.close()
        with requests.get(url, headers=site.admin, stream=True, timeout=10) as refused:
            assert refused.status_code == 429, "closed streams count until their worker notices"
            retry_after = int(refused.headers["Retry-After"])
        time.sleep(retry_after)
        again = StreamReader(site.base, site.admin).start()
        try:
            assert again.status == 200
        finally:
            again.close()
    finally:
        server.stop()
        redis.stop()


def test_after_redis_is_flushed_open_streams_count_again_within_a_heartbeat(fresh_db: str):
    """The leases lived only in Redis and a renewal updated existing ones only: after a
    FLUSHDB a usuario with 3 open streams could open 4 more (a helper's probe: 7 open)."""
    redis_server = RedisServer().start()
    server = start(fresh_db, redis_server.url, workers=1)
    readers: list[StreamReader] = []
    try:
        site = seed(fresh_db, server.url)
        readers = [StreamReader(site.base, site.admin).start() for _ in range(3)]
        for reader in readers:
            reader.take(4)
        client = redis.Redis.from_url(redis_server.url)
        client.flushdb()
        leases = f"{server.prefix}:live:streams:{{{site.admin_id}}}"
        deadline = time.monotonic() + 3 * float(LIVE_ENV["LIVE_HEARTBEAT_SECONDS"])
        while client.zcard(leases) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.zcard(leases) == 3, "the open streams put their leases back"
        readers.append(StreamReader(site.base, site.admin).start())
        assert readers[-1].status == 200  # the 4th
        readers.append(StreamReader(site.base, site.admin).start())
        assert readers[-1].status == 429  # the 5th
    finally:
        for reader in readers:
            reader.close()
        server.stop()
        redis_server.stop()


def test_a_cliente_gets_403(live: Running):
    site = live.site
    r = requests.get(f"{site.base}/api/admin/estadisticas/stream/", headers=site.cliente, timeout=5)
    assert r.status_code == 403


def test_a_head_request_gives_back_what_it_took(live: Running):
    """HEAD is answered unread: the body's `finally` never ran, so each one kept a
    per-usuario lease and a worker slot (a helper's probe: the 5th stream was a 429
    with none open, and repeated HEADs switched live statistics off on a worker)."""
    site = live.site
    url = f"{site.base}/api/admin/estadisticas/stream/"
    for _ in range(6):  # more than the 4 streams a usuario may hold
        head = requests.head(url, headers=site.admin, timeout=5)
        assert head.status_code == 200
        assert head.headers["Content-Type"].startswith("text/event-stream")
    reader = StreamReader(site.base, site.admin).start()
    try:
        assert reader.status == 200
        assert [e.name for e in reader.take(4)] == list(STATS)
    finally:
        reader.close()


def test_a_stream_that_names_the_one_it_replaces_takes_its_place(live: Running):
    """A reloaded console: its closed stream kept its place until its worker's next
    heartbeat write failed, so four reloads left the page refused (429) for ~30 s (a
    probe). The new stream names the old one's lease (X-Stream-Replaces): that one
    stops counting at once and ends at its next keepalive; a lease of another
    usuario's, or none of this server's, frees nothing."""
    site = live.site
    headers = site.headers_for(site.trabajador_ids[5])  # usuarios no other test streams as
    readers = [StreamReader(site.base, headers).start() for _ in range(4)]
    try:
        assert [r.status for r in readers] == [200] * 4
        other = site.headers_for(site.trabajador_ids[6])
        others = StreamReader(site.base, other).start()
        try:
            stranger = others.response_headers["X-Stream-Lease"]
            for replaces in (stranger, "0" * 32, "not-a-lease"):
                refused = StreamReader(site.base, {**headers, "X-Stream-Replaces": replaces})
                assert refused.start().status == 429, replaces
                refused.close()
            # A lease that was not there leaves no tombstone behind (bounded state).
            client = redis.Redis.from_url(live.redis.url)
            assert not client.keys("*:replaced*"), client.keys("*:replaced*")
        finally:
            others.close()
        old = readers[0]
        lease = old.response_headers["X-Stream-Lease"]
        new = StreamReader(site.base, {**headers, "X-Stream-Replaces": lease}).start()
        readers.append(new)
        assert new.status == 200
        # The replaced stream ends by itself at its next keepalive (its client is gone).
        assert old.ended.wait(3 * float(LIVE_ENV["LIVE_HEARTBEAT_SECONDS"]))
        assert new.ended.is_set() is False
        fifth = requests.get(
            f"{site.base}/api/admin/estadisticas/stream/", headers=headers, timeout=10
        )
        assert fifth.status_code == 429  # still four places: the new one holds the old's
    finally:
        for reader in readers:
            reader.close()


def test_a_chain_of_replacements_holds_at_most_twice_the_limit_open(live: Running):
    """A security probe: each new stream naming the previous one freed its place at
    once while the old one ran on until its next keepalive, so one trabajador held 49
    streams (the limit said 4) and the server refused everyone else's. Replaced streams
    still running are capped at the limit too."""
    site = live.site
    headers = site.headers_for(site.trabajador_ids[7])
    opened = [StreamReader(site.base, headers).start() for _ in range(4)]
    try:
        assert [r.status for r in opened] == [200] * 4
        previous = opened[-1].response_headers["X-Stream-Lease"]
        statuses = []
        for _ in range(12):
            reader = StreamReader(site.base, {**headers, "X-Stream-Replaces": previous})
            reader.start()
            statuses.append(reader.status)
            opened.append(reader)
            if reader.status == 200:
                previous = reader.response_headers["X-Stream-Lease"]
        running = sum(1 for r in opened if r.status == 200 and not r.ended.is_set())
        assert running <= 8, (running, statuses)
    finally:
        for reader in opened:
            reader.close()
