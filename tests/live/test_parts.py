"""The small parts of live statistics, without servers: Prefer parsing, resume tokens, digests."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import ExitStack

import pytest

from electro_isla.live.hub import STATS, LiveHub, Version, digest_of
from electro_isla.live.recheck import Rechecks
from electro_isla.live.stream import parse_resume, resume_token
from electro_isla.live.wait import requested_wait
from electro_isla.shared_store import SharedStore
from electro_isla_testing.live import StreamReader


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=10", 10),
        ("respond-async, wait=5", 5),
        ('wait="7"', 7),
        ("WAIT=3; foo=bar", 3),
        ("wait=-1", None),
        ("wait=abc", None),
        ("wait=\u00b3", None),  # isdigit() but not int(): was a 500, before any login
        ("wait=\u0663", None),  # an Arabic-Indic digit: int() takes it, RFC 7240 does not
        ("wait=99999999999", 86_400),  # a valid wait, however long: the view caps it
        ("return=minimal", None),
        ("", None),
        (None, None),
        ("wait=1" + " " * 300, None),
    ],
)
def test_prefer_wait_is_parsed_as_rfc_7240_says(header, seconds):
    assert requested_wait(header) == seconds


def test_the_digest_ignores_when_the_figures_were_computed():
    a = {"resumen": {"total_pedidos": 1}, "generado_en": "x", "fecha_generacion": "x"}
    b = {**a, "generado_en": "y", "fecha_generacion": "y"}
    c = {**a, "resumen": {"total_pedidos": 2}}
    assert digest_of(json.dumps(a)) == digest_of(json.dumps(b))
    assert digest_of(json.dumps(a)) != digest_of(json.dumps(c))
    version = Version.of({"etag": "e", "body": json.dumps(a) + "\n"})
    assert "\n" not in version.body


def test_resume_tokens_round_trip_and_foreign_ones_are_ignored():
    digests = {"ventas": "a" * 12, "usuarios": "b" * 12, "productos": "c" * 12, "reporte": "d" * 12}
    assert parse_resume(resume_token(digests)) == digests
    for foreign in ("", "abc", "2-" + "-".join(["a" * 12] * 4), "1-" + "-".join(["Z" * 12] * 4)):
        assert parse_resume(foreign) == {}


def test_rechecks_share_a_reading_that_started_after_each_asked():
    started: list[float] = []

    def read(holders):  # noqa: ANN001, ANN202
        started.append(time.monotonic())
        time.sleep(0.05)
        return {h: str(len(started) - 1) for h in holders}  # which reading answered

    rechecks = Rechecks(read)
    answers: list[tuple[float, str]] = []

    def ask(i: int) -> None:
        since = time.monotonic()
        answers.append((since, rechecks.standing(f"jti{i % 4}", i % 4, since)))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 20
    assert rechecks.reads <= 3  # the first alone, the others queued behind it
    # No answer came from a reading that started before its caller asked.
    for since, reading in answers:
        assert started[int(reading)] >= since
    # An older reading is not reused for a later `since`.
    later = time.monotonic()
    assert rechecks.standing("jti0", 0, later) == str(len(started) - 1)
    assert started[-1] >= later


def test_the_hub_fetches_only_wanted_statistics_and_a_covered_sync_refreshes_nothing(app):
    fetched: list[str] = []

    def fetch(stat: str) -> dict[str, str]:
        fetched.append(stat)
        return {"etag": f"e-{stat}", "body": json.dumps({"stat": stat})}

    hub = LiveHub(app, fetch)
    hub.alive = lambda: False  # no background thread: only the calls below refresh
    refreshes: list[float] = []
    refresh = hub.refresh
    hub.refresh = lambda: refreshes.append(time.monotonic()) or refresh()  # type: ignore[method-assign]
    with hub.watching("ventas"):
        before = time.monotonic()
        hub.sync("ventas", before)
        assert len(refreshes) == 1
        assert fetched == ["ventas"], "nobody watches or read the others"
        assert hub.behind("usuarios") and not hub.behind("ventas")
        hub.sync("ventas", before)  # read before that refresh: covered by it
        assert len(refreshes) == 1
        hub.sync("ventas", time.monotonic())  # read after it: refresh again
        assert len(refreshes) == 2
    assert fetched == ["ventas"], "nothing moved since"


def test_the_statistics_one_change_moved_are_fetched_at_once(app):
    """Each fetch below returns only when all four run together: fetched in turn,
    the first would wait for the others forever (here: the barrier's 5 s)."""
    together = threading.Barrier(len(STATS), timeout=5)
    threads: set[str] = set()

    def fetch(stat: str) -> dict[str, str]:
        threads.add(threading.current_thread().name)
        together.wait()
        return {"etag": f"e-{stat}", "body": json.dumps({"stat": stat})}

    hub = LiveHub(app, fetch)
    hub.alive = lambda: False  # no background thread: only the call below refreshes
    watching = [hub.watching(stat) for stat in STATS]
    for held in watching:
        held.__enter__()
    try:
        assert hub.refresh()
    finally:
        for held in watching:
            held.__exit__(None, None, None)
    assert {stat: hub.version(stat).etag for stat in STATS} == {s: f"e-{s}" for s in STATS}
    assert len(threads) == len(STATS)


def test_a_sentinel_master_switch_makes_the_hub_fetch_again(app, monkeypatch):
    """Around a failover a refresh can read the new master's counters and fetch the old
    master's figures; no counter moves afterwards to correct that. Once this process
    has followed the switch (shared_store/sentinel.py), every watched statistic is
    fetched once more."""
    figures = {"n": 1}

    def fetch(stat: str) -> dict[str, str]:
        return {"etag": f"e{figures['n']}", "body": json.dumps({"n": figures["n"]})}

    switches = {"n": 0}
    # raising=False: on code without the method the hub simply never sees a switch.
    monkeypatch.setattr(SharedStore, "master_switches", lambda _self: switches["n"], raising=False)
    hub = LiveHub(app, fetch)
    hub.alive = lambda: False  # no background thread: only the calls below refresh
    with hub.watching("reporte"):
        hub.refresh()
        assert json.loads(hub.version("reporte").body) == {"n": 1}
        figures["n"] = 2  # the figures now differ from what was fetched; no counter moved
        assert not hub.refresh()
        assert json.loads(hub.version("reporte").body) == {"n": 1}, "nothing moved: no fetch"
        switches["n"] = 1
        assert hub.refresh()
        assert json.loads(hub.version("reporte").body) == {"n": 2}
        assert not hub.refresh(), "once per switch"


def _wake_together(rechecks: Rechecks, hold: bool) -> list[str]:
    """20 held waits woken by one change at `since`: the first asks at once, the others
    while its reading is under way (as woken threads queue for the GIL)."""
    holders = [(f"jti{i}", i) for i in range(20)]
    since = time.monotonic()
    answers: list[str] = []

    def wake(i: int) -> None:
        if i:
            time.sleep(0.02)
        answers.append(rechecks.standing(*holders[i], since))

    with ExitStack() as held:
        if hold:
            for holder in holders:
                held.enter_context(rechecks.held(*holder))
        threads = [threading.Thread(target=wake, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return answers


def test_one_reading_covers_every_held_wait_a_change_wakes():
    def read(holders):  # noqa: ANN001, ANN202
        time.sleep(0.05)
        return {h: "admin" for h in holders}

    held = Rechecks(read)
    assert _wake_together(held, hold=True) == ["admin"] * 20
    assert held.reads == 1
    # Unknown holders: the first waker's reading covers only itself, so a second one.
    # That first reading lasts until the 19 others have queued (a fixed 50 ms let a
    # waker that a loaded machine started late miss it, and a third reading followed).
    readings: list[int] = []

    def first_waits_for_the_others(holders):  # noqa: ANN001, ANN202
        readings.append(len(holders))
        deadline = time.monotonic() + 5
        while len(readings) == 1 and unknown.queued < 19 and time.monotonic() < deadline:
            time.sleep(0.005)
        return {h: "admin" for h in holders}

    unknown = Rechecks(first_waits_for_the_others)
    assert _wake_together(unknown, hold=False) == ["admin"] * 20
    assert readings == [1, 19]
    assert unknown.reads == 2


@pytest.mark.parametrize("last_chunk", [True, False])
def test_the_stream_reader_tells_a_cut_stream_from_an_ended_one(last_chunk):
    """test_recycling.py trusts `clean_end`: a server that cuts a chunked body must not
    read as one that sent its last chunk (`readline()` returned b"" for both)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        event = b"event: reporte\ndata: {}\n\n"
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: text/event-stream\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(event), event)
            + (b"0\r\n\r\n" if last_chunk else b"")
        )
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    reader = StreamReader(f"http://127.0.0.1:{listener.getsockname()[1]}", {}).start()
    try:
        assert reader.next(timeout=5).name == "reporte"
        assert reader.ended.wait(5)
        assert reader.clean_end is last_chunk
    finally:
        listener.close()
