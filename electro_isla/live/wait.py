"""The conditional wait: `If-None-Match` + `Prefer: wait=N` held until the figures change.

RFC 7240's `wait` with RFC 9110's conditional GET, as Consul's blocking queries
do with an index, but compared by content: the request is held while the tag
the client holds is current, and woken only when the statistic's figures differ
from the ones that tag was computed from. The hold is the allowed wait less a
random jitter of up to 1/16 (so a herd that started together does not come back
together). While it waits the request holds no database connection; when it
wakes it re-checks the token and the role (a logout or a demotion meanwhile:
401/403, not figures), then answers through the ordinary path (200 with the new
body and ETag, or 304).
"""

from __future__ import annotations

import random
import select
import socket
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request
from flask_jwt_extended import get_jwt
from flask_smorest import abort

from electro_isla.auth.permissions import STAFF
from electro_isla.extensions import db
from electro_isla.live import live_of
from electro_isla.live.recheck import INACTIVE, REVOKED, Rechecks, current_holder
from electro_isla.rendering import respond

MAX_PREFER_LENGTH = 200
LONGEST_ASKED = 86_400  # a larger wait asks for nothing more (the cap is far below)
BEARER = {"WWW-Authenticate": "Bearer"}


def requested_wait(header: str | None) -> int | None:
    """Seconds asked by `Prefer: wait=N` (RFC 7240), None when absent or malformed.

    A huge N is still a wait (capped later), not a reason to answer at once."""
    if not header or len(header) > MAX_PREFER_LENGTH:
        return None
    for preference in header.split(","):
        token = preference.split(";", 1)[0].strip()
        name, _, value = token.partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            # Any number is a valid wait (RFC 7240); the view caps it at LIVE_MAX_WAIT.
            digits = value.isascii() and value.isdigit()  # int() takes "³" and "٣" too
            return min(int(value), LONGEST_ASKED) if digits else None
    return None


def client_gone() -> bool:
    """True when the client has closed its connection (a cancelled wait frees its slot)."""
    sock = request.environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True


def held_on_the_hubs_tag(stat: str) -> bool:
    """A wait sent again with the tag the hub holds now: `answer` holds it from the
    hub's copy, so a cache lookup of the statistic would be read for nothing."""
    tags = request.if_none_match
    live = live_of(current_app)
    if not tags or not requested_wait(request.headers.get("Prefer")) or live.max_wait <= 0:
        return False  # (a wait not held is answered by the lookup: `answer`)
    fresh = live.hub.current(stat)
    return fresh is not None and tags.contains_weak(fresh.etag)


def answer(stat: str, rendered: Callable[[str], Any]) -> Response:
    """A statistic's GET: at once, or held while the client's tag stays current."""
    started = time.monotonic()
    wait = requested_wait(request.headers.get("Prefer"))
    tags = request.if_none_match
    live = live_of(current_app)
    hub = live.hub
    hub.noted_read(stat)  # read here lately: the hub keeps it fresh (a poll then HITs)
    if not wait or not tags:
        return respond(rendered(stat))
    # A wait sent again with the version the hub just woke it with: the hub's copy is
    # the current one (it re-reads the counters on every hint and every recheck), so
    # no cache read per watcher, and no second fetch when the figures moved meanwhile.
    fresh = hub.current(stat)
    read_at = started
    from_hub = fresh is not None and tags.contains_weak(fresh.etag)
    if from_hub:
        current = fresh.rendered
    elif fresh is not None and hub.superseded(stat, tags) and (latest := hub.synced(stat, started)):
        # A tag this hub has replaced since (the client was woken by an earlier change):
        # answered from the hub once it read the counters after this request began, so
        # a write answered before the request was sent is in it (one refresh serves a
        # burst of such waits).
        return respond(latest.rendered)
    else:
        current = rendered(stat)
        read_at = time.monotonic()  # a refresh from now on sees at least what was read
        if not tags.contains_weak(current["etag"]):
            return respond(current)
    allowed = min(wait, live.max_wait)
    if allowed <= 0 or not hub.usable() or not live.slots.take():
        # Not held, so no hint will wake it: the hub's copy may miss a write answered
        # before this request (its hint still on the way). Answered as a GET is.
        return respond(rendered(stat) if from_hub else current)  # the client polls instead
    holder = current_holder()
    try:
        g.live_preference_applied = f"wait={allowed}"
        baseline = hub.digest(current)
        # Fetched on every change while held; its token and role read with the others'.
        with hub.watching(stat), live.rechecks.held(*holder):
            known = hub.version(stat)
            if known is None or known.digest != baseline or hub.behind(stat):
                hub.sync(stat, read_at)  # the hub may be behind what this request just read
            deadline = started + allowed - random.uniform(0, allowed / 16)
            db.session.close()  # no pooled connection held while waiting
            live.leave_ordinary()
            changed = hub.wait_for(stat, baseline, deadline, client_gone)
    finally:
        live.slots.give()
    version = hub.version(stat)
    woken = changed and version is not None and version.digest != baseline
    # Woken by a change: the token and role as they were once it reached this process
    # (one reading for every wait it wakes); otherwise as they are now.
    _still_allowed(live.rechecks, holder, version.at if woken else time.monotonic())
    if woken:
        # The hub fetched it after the change that woke us: no second lookup per watcher.
        return respond(version.rendered)
    return respond(rendered(stat))


def _still_allowed(rechecks: Rechecks, holder: tuple[str, int], since: float) -> None:
    """The token and the role from a reading begun at or after `since`: 401/403 instead
    of figures. Read together with every other held wait (live/recheck.py)."""
    if float(get_jwt().get("exp", 0)) <= time.time():
        abort(401, message="The access token has expired.", headers=BEARER)
    standing = rechecks.standing(*holder, since)
    db.session.close()
    if standing == REVOKED:
        abort(401, message="The access token has been revoked.", headers=BEARER)
    if standing == INACTIVE:
        abort(401, message="This account is inactive or no longer exists.", headers=BEARER)
    if standing not in STAFF:
        abort(403, message="You do not have permission to do this.")
