"""`GET /api/admin/estadisticas/stream/`: the four statistics as server-sent events.

First one event per statistic (its current body), then one per change, from the
process's hub (live/hub.py): a change is fetched once per process, whatever the
number of streams. Per statistic, events closer together than
LIVE_MIN_INTERVAL_MS are coalesced into one with the latest figures. A comment
line at least every LIVE_HEARTBEAT_SECONDS (≤ 15) keeps proxies from closing an
idle stream and tells the server when the client has gone.

The event id is the resume token: the digests of the four statistics' figures as
this client now has them. A reconnection with `Last-Event-ID` (to any worker of
any host) sends only the statistics whose figures differ; the server keeps
nothing per client.

The stream ends when the token expires, when it is revoked (logout), or when
the usuario loses staff rights: the token and the role are re-checked every
LIVE_AUTH_CHECK_SECONDS. It also ends when the worker is told to stop; the
client reconnects (`retry:` says after how long) and lands on another.

With the shared store down the stream goes on: the hub recomputes the figures
from the database at most once a second per process while streams are open.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import get_jwt
from flask_smorest import abort

from electro_isla.auth.permissions import STAFF, current_actor, staff_required
from electro_isla.blueprint import Blueprint
from electro_isla.extensions import db
from electro_isla.live import Live, live_of
from electro_isla.live.hub import STATS, LiveHub, Version
from electro_isla.live.recheck import current_holder

log = logging.getLogger("electro_isla.live")

blp = Blueprint(
    "estadisticas_stream",
    __name__,
    url_prefix="/api/admin/estadisticas",
    description="Live statistics: one event stream for the four statistics (staff only)",
)

RETRY_MS = 2000
RESUME_VERSION = "1"
RESUME_TOKEN = re.compile(r"^1(?:-[0-9a-f]{12}){4}$")
SLOTS_RETRY_AFTER = 15  # a held stream or wait may end at any time


def resume_token(digests: dict[str, str]) -> str:
    return "-".join([RESUME_VERSION, *(digests.get(stat, "0" * 12) for stat in STATS)])


def parse_resume(raw: str | None) -> dict[str, str]:
    """What a `Last-Event-ID` says the client has; {} when absent or not ours."""
    if not raw or not RESUME_TOKEN.match(raw.strip()):
        return {}
    return dict(zip(STATS, raw.strip().split("-")[1:], strict=True))


def _event(stat: str, body: str, digests: dict[str, str]) -> str:
    return f"event: {stat}\nid: {resume_token(digests)}\ndata: {body}\n\n"


def _still_allowed(live: Live, holder: tuple[str, int], since: float) -> bool:
    """Token (revocation) and role as read at or after `since`, shared (live/recheck.py)."""
    try:
        return live.rechecks.standing(*holder, since) in STAFF
    finally:
        db.session.close()


def _next_tick(every: float) -> float:
    """The next multiple of `every` on the monotonic clock: the process's streams re-check
    together, so one reading answers for all of them."""
    return (math.floor(time.monotonic() / every) + 1) * every


class Pacing:
    """When a stream may send each statistic: a change that follows the last change
    it sent by less than `interval` goes out at that interval's end, as one event
    with the latest figures; a later one goes at once.

    Measured between changes (when each reached the process, `Version.at`), not
    from when an event was written: on a busy CPU a late write would otherwise hold
    back the next change by its own lateness, and with changes about `interval`
    apart every later one by the largest lateness so far.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}  # stat -> when its last sent change reached the hub

    def due(self, stat: str) -> float:
        """The earliest time `stat`'s next event may go (0: at once)."""
        last = self.last.get(stat)
        return 0.0 if last is None else last + self.interval

    def sent(self, stat: str, version: Version) -> None:
        self.last[stat] = version.at


def events(
    live: Live, have: dict[str, str], expires_at: float, holder: tuple[str, int]
) -> Iterator[str]:
    """The stream's text: first what the client lacks, then each change, until it must end."""
    hub = live.hub
    sent = dict(have)
    pacing = Pacing(live.min_interval)
    yield f"retry: {RETRY_MS}\n\n"
    hub.sync()
    now = time.monotonic()
    next_beat = now + live.heartbeat
    next_auth = _next_tick(live.auth_every)
    caught_up = False
    while True:
        now = time.monotonic()
        if hub.stopping or not hub.alive() or time.time() >= expires_at:
            return
        wake_at = min(next_beat, next_auth, now + max(0.0, expires_at - time.time()))
        chunk = []
        for stat in STATS:
            version = hub.version(stat)
            if version is None or version.digest == sent.get(stat):
                continue
            due = pacing.due(stat)
            if due <= now:
                sent[stat] = version.digest
                pacing.sent(stat, version)
                chunk.append(_event(stat, version.body, sent))
            else:
                wake_at = min(wake_at, due)  # coalesce: the latest figures at `due`
        if chunk:
            caught_up = True
            yield "".join(chunk)  # every statistic that moved, in one write
            continue
        if not caught_up:
            caught_up = True
            if have and all(
                (version := hub.version(stat)) is not None and version.digest == have.get(stat)
                for stat in STATS
            ):
                # A resumed client that lacks nothing hears so at once: a console waits a
                # few seconds for a first sign to tell a flowing stream from a buffering
                # proxy. (Not when a statistic could not be read: no figures, no comfort.)
                yield ": up to date\n\n"
                continue
        if now >= next_auth:
            if not _still_allowed(live, holder, next_auth):
                return
            next_auth = _next_tick(live.auth_every)
            continue
        if now >= next_beat:
            yield ": keepalive\n\n"
            next_beat = now + live.heartbeat
            continue
        with hub.changed:
            if not _any_ready(hub, sent, pacing):
                hub.changed.wait(max(0.0, min(wake_at - time.monotonic(), 1.0)))


def _any_ready(hub: LiveHub, sent: dict[str, str], pacing: Pacing) -> bool:
    """A change this stream may send now (checked under the hub's lock: no lost wake-up)."""
    now = time.monotonic()
    for stat in STATS:
        version = hub.version(stat)
        if version is not None and version.digest != sent.get(stat) and pacing.due(stat) <= now:
            return True
    return False


@blp.route("/stream/")
class EstadisticasStream(MethodView):
    @blp.doc(
        parameters=[
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "The last event's id: only the statistics changed since are sent",
                "schema": {"type": "string"},
            },
            {
                "name": "X-Stream-Replaces",
                "in": "header",
                "required": False,
                "description": "The X-Stream-Lease of this client's previous stream (a "
                "reloaded page): it stops counting against the per-usuario limit now and "
                "ends at its next keepalive",
                "schema": {"type": "string"},
            },
        ],
        responses={
            "200": {
                "description": "text/event-stream: `event: ventas|usuarios|productos|reporte`,"
                " `id: <resume token>`, `data: <the endpoint's JSON body>`",
                "headers": {
                    "X-Stream-Lease": {
                        "description": "This stream's place in the per-usuario limit, for "
                        "the client's next stream to replace (absent while Redis is down)",
                        "schema": {"type": "string"},
                    }
                },
                # Each event, as an SSE parser hands it over (comments are not events).
                "content": {
                    "text/event-stream": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "event": {"type": "string", "enum": list(STATS)},
                                "id": {"type": "string"},
                                "data": {"type": "string", "description": "the endpoint's body"},
                                "retry": {"type": "integer"},
                            },
                            "required": ["data"],
                        }
                    }
                },
            }
        },
    )
    @blp.alt_response(401, description="Not authenticated")
    @blp.alt_response(403, description="Not staff")
    @blp.alt_response(
        429,
        description="Too many streams (per process, or 4 per usuario)",
        headers={
            "Retry-After": {
                "description": "Seconds before trying again",
                "schema": {"type": "integer"},
            }
        },
    )
    @staff_required
    def get(self) -> Response:
        """The four statistics, then one event per change (Last-Event-ID resumes)"""
        live = live_of(current_app)
        actor = current_actor()
        expires_at = float(get_jwt().get("exp", time.time()))
        if not live.slots.take():
            abort(
                429,
                message="This server holds as many live clients as it can; poll instead.",
                headers={"Retry-After": str(SLOTS_RETRY_AFTER)},
            )
        # A client names the stream this one replaces (the console, after a reload):
        # that one stops counting against the usuario's limit now.
        lease = live.quota.take(actor.id, request.headers.get("X-Stream-Replaces"))
        if lease is None:
            live.slots.give()
            abort(
                429,
                message=f"At most {live.quota.limit} open streams per usuario.",
                headers={"Retry-After": str(live.quota.retry_after)},
            )
        have = parse_resume(request.headers.get("Last-Event-ID"))
        holder = current_holder()
        hub = live.hub
        hub.stream_opened()
        db.session.close()
        live.leave_ordinary()

        released = threading.Lock()  # taken by the first release, never given back

        def release() -> None:
            """Give back what this stream took, once: from the body's end, or from the
            response's close when the body never ran (a HEAD is closed unread)."""
            if released.acquire(blocking=False):
                hub.stream_closed()
                live.slots.give()
                live.quota.give(actor.id, lease)

        def body() -> Iterator[str]:
            renewed = time.monotonic()
            try:
                for chunk in events(live, have, expires_at, holder):
                    # Every keepalive renews (they come a heartbeat apart; half of one
                    # leaves room for the wait's and Redis's jitter).
                    if time.monotonic() - renewed >= live.heartbeat / 2:
                        renewed = time.monotonic()
                        if not live.quota.renew(actor.id, lease):
                            return  # a newer stream of its client replaced it
                    yield chunk
            finally:
                release()

        response = Response(stream_with_context(body()), mimetype="text/event-stream")
        response.call_on_close(release)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        if not lease.startswith("local:"):  # what the client's next stream may replace
            response.headers["X-Stream-Lease"] = lease
        return response
