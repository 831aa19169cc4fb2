"""A stream's coalescing (LIVE_MIN_INTERVAL_MS), driven on a fake clock without servers.

The interval is counted from when each change reached the process, so an event
written late (a busy CPU) does not hold back the next change; changes closer
together than the interval still go out as one event with the latest figures.
"""

from __future__ import annotations

import json
import time
import types

import pytest

from electro_isla.live import stream
from electro_isla.live.hub import STATS, Version

INTERVAL = 0.2


class FakeHub:
    """What events() reads of a hub, on a fake clock: a wait moves the clock on to its
    timeout or to the next scripted change (which notifies), whichever comes first."""

    stopping = False

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.versions: dict[str, Version] = {}
        self.script: list[tuple[float, str, int]] = []  # (at, stat, total), in time order
        self.changed = self

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def wait(self, timeout: float) -> None:
        until = self.now[0] + timeout
        if self.script and self.script[0][0] < until:
            until = self.script[0][0]
        self.now[0] = until
        while self.script and self.script[0][0] <= until:
            at, stat, total = self.script.pop(0)
            self.change(stat, total, at)

    def alive(self) -> bool:
        return True

    def sync(self) -> None:
        return None

    def version(self, stat: str) -> Version | None:
        return self.versions.get(stat)

    def change(self, stat: str, total: int, at: float) -> None:
        body = f'{{"total":{total}}}'
        self.versions[stat] = Version(f'"{total}"', body, f"{total:012d}", {}, at)


@pytest.fixture
def hub(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(
        stream, "time", types.SimpleNamespace(monotonic=lambda: now[0], time=time.time)
    )
    hub = FakeHub(now)
    for stat in STATS:
        hub.change(stat, 0, at=now[0])
    return hub


def _stream(hub: FakeHub):
    live = types.SimpleNamespace(
        hub=hub, min_interval=INTERVAL, heartbeat=10.0, auth_every=1000.0, rechecks=None
    )
    events = stream.events(live, {}, time.time() + 3600, ("jti", 1))
    assert next(events).startswith("retry:")
    assert _sent(next(events)) == [(stat, 0) for stat in STATS]
    return events


def _sent(chunk: str) -> list[tuple[str, int]]:
    """(statistic, total) of each event in a chunk."""
    names = [line[7:] for line in chunk.splitlines() if line.startswith("event: ")]
    totals = [
        json.loads(line[6:])["total"] for line in chunk.splitlines() if line.startswith("data: ")
    ]
    return list(zip(names, totals, strict=True))


def test_a_change_after_a_late_event_goes_at_once(hub):
    events = _stream(hub)
    # A change reaches the hub at +0.25 s; its event is written only at +0.40 s.
    hub.change("reporte", 1, at=100.25)
    hub.now[0] = 100.40
    assert _sent(next(events)) == [("reporte", 1)]
    # The next change comes 0.2 s after the one before it: it goes at once, not
    # 0.2 s after the late write.
    hub.script = [(100.45, "reporte", 2)]
    assert _sent(next(events)) == [("reporte", 2)]
    assert hub.now[0] == pytest.approx(100.45)


def test_changes_closer_than_the_interval_go_as_one_event_with_the_latest(hub):
    events = _stream(hub)
    hub.script = [(100.30, "ventas", 1), (100.35, "ventas", 2), (100.40, "ventas", 3)]
    assert _sent(next(events)) == [("ventas", 1)]
    assert hub.now[0] == pytest.approx(100.30)
    # 2 and 3 came within 0.2 s of 1: one event, with 3, 0.2 s after 1.
    assert _sent(next(events)) == [("ventas", 3)]
    assert hub.now[0] == pytest.approx(100.50)


def test_a_statistic_changing_all_the_time_sends_about_one_event_per_interval(hub):
    events = _stream(hub)
    hub.script = [(100.0 + k / 100, "productos", k) for k in range(1, 201)]  # 2 s
    sent = []
    while hub.script:
        sent += _sent(next(events))
    assert 9 <= len(sent) <= 11, sent
    assert sent[-1][1] >= 190  # the latest figures, not a backlog


def _resumed(hub: FakeHub, have: dict[str, str]):
    live = types.SimpleNamespace(
        hub=hub, min_interval=INTERVAL, heartbeat=10.0, auth_every=1000.0, rechecks=None
    )
    events = stream.events(live, have, time.time() + 3600, ("jti", 1))
    assert next(events).startswith("retry:")
    return events


def test_a_resume_that_lacks_nothing_is_told_so_at_once(hub):
    events = _resumed(hub, {stat: hub.versions[stat].digest for stat in STATS})
    assert next(events) == ": up to date\n\n"
    assert hub.now[0] == pytest.approx(100.0)


def test_a_statistic_that_could_not_be_read_is_no_up_to_date(hub):
    """The hub's first fetch failed (no version): nothing says all is well, so a console
    falls back to polling, which shows why."""
    have = {stat: hub.versions[stat].digest for stat in STATS}
    del hub.versions["ventas"]
    events = _resumed(hub, have)
    assert next(events) == ": keepalive\n\n"  # the first thing, a heartbeat later
    assert hub.now[0] == pytest.approx(110.0)
