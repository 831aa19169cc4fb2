"""Live statistics: a conditional wait on each statistic and one event stream for all four.

API.md "Live statistics". One mechanism serves both: the per-process hub
(hub.py) learns of changes from one Redis subscription plus a recheck of the
generation counters, fetches each change once, and wakes whoever waits.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, g

from electro_isla.estadisticas.registro import rendered
from electro_isla.live import notify
from electro_isla.live.hub import STATS, LiveHub, Version
from electro_isla.live.limits import Ordinary, Slots, StreamQuota
from electro_isla.live.recheck import Rechecks

__all__ = ["STATS", "Live", "LiveHub", "Version", "live_of", "register_live"]

EXTENSION_KEY = "electro_isla.live"
MAX_WAIT_CEILING = 60


@dataclass
class Live:
    hub: LiveHub
    slots: Slots
    quota: StreamQuota
    max_wait: int
    min_interval: float
    heartbeat: float
    auth_every: float
    rechecks: Rechecks
    ordinary: Ordinary | None = None

    def leave_ordinary(self) -> None:
        """This request now holds: its place among ordinary requests is free again."""
        if self.ordinary is not None:
            self.ordinary.leave()


def live_of(app: Flask) -> Live:
    return app.extensions[EXTENSION_KEY]


def register_live(app: Flask) -> None:
    """The hub (started on first use, in the worker), limits, publishing and headers."""
    config = app.config
    heartbeat = min(15.0, float(config["LIVE_HEARTBEAT_SECONDS"]))
    app.extensions[EXTENSION_KEY] = Live(
        hub=LiveHub(app, rendered),
        slots=Slots(int(config["LIVE_MAX_WAITERS"])),
        quota=StreamQuota(app, int(config["LIVE_STREAMS_PER_USUARIO"]), 3 * heartbeat),
        max_wait=max(0, min(int(config["LIVE_MAX_WAIT"]), MAX_WAIT_CEILING)),
        min_interval=max(0, int(config["LIVE_MIN_INTERVAL_MS"])) / 1000,
        heartbeat=heartbeat,
        auth_every=float(config["LIVE_AUTH_CHECK_SECONDS"]),
        rechecks=Rechecks(),
    )
    notify.connect(app)
    ordinary_threads = int(config.get("LIVE_ORDINARY_THREADS") or 0)
    if ordinary_threads > 0:
        live = app.extensions[EXTENSION_KEY]
        live.ordinary = Ordinary(ordinary_threads)

        @app.before_request
        def enter_ordinary() -> None:
            live.ordinary.enter()

        @app.teardown_request
        def leave_ordinary(_exc: BaseException | None) -> None:
            live.leave_ordinary()

    @app.after_request
    def preference_applied(response: Response) -> Response:
        applied = g.pop("live_preference_applied", None)
        if applied is not None:
            response.headers["Preference-Applied"] = applied
            response.vary.add("Prefer")
        return response
