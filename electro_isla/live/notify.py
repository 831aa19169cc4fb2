"""Publishing: a committed bump of a statistic becomes a hint on `<prefix>:live`.

Hung on the cache's one seam, `generations_bumped` (cache/signals.py), which the
cache sends wherever a bump is applied: after the writer's COMMIT, and when a
process replays bumps another could not apply. The message is a hint, never the
truth: a publish that fails or is lost costs one recheck interval (live/hub.py),
so its failure is logged and never fails the write, nor opens the circuit.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from electro_isla.cache import REDIS_ERRORS, shared_redis
from electro_isla.cache.signals import generations_bumped
from electro_isla.live.hub import CACHED_NAMES

log = logging.getLogger("electro_isla.live")


def connect(app: Flask) -> None:
    """Publish this app's bumps of the statistics (once per app).

    The receiver is a module function and blinker holds the app weakly: a
    closure over the app, connected strongly, would keep every app ever built
    alive (a test session's heap grew to 1.7 M objects, and its full garbage
    collections to over a second).
    """
    generations_bumped.connect(publish_bumps, sender=app)


def publish_bumps(app: Flask, names: frozenset[str] = frozenset(), **_: Any) -> None:
    """Tell the watchers of `app`'s prefix which statistics a bump outdated."""
    relevant = names & CACHED_NAMES
    if not relevant:
        return
    live = app.extensions.get("electro_isla.live")
    client = shared_redis(app)
    if client is None:
        if live is not None:
            live.hub.poke()
        return
    try:
        client.publish(live.hub.channel, ",".join(sorted(relevant)))
    except REDIS_ERRORS as exc:
        log.warning("LIVE publish failed (watchers recheck): %s", type(exc).__name__)
