"""The notifier of one worker process: one subscription, one fetch per change, all woken.

Every process holds ONE Redis pub/sub subscription (not one per client, as
Flask-SSE does) on `<prefix>:live`; a committed bump of a statistic publishes
its cached names there (live/notify.py). A message is only a hint: on each one,
and at least every `LIVE_RECHECK_MS` whatever arrives, the hub re-reads the four
statistics' generation counters, and for each that moved fetches the statistic
once through the cache (whose lock makes that one computation for every process
of every host). It then compares the figures' digest, not the counter: a bump
that leaves the figures as they were (another order's estado, a TTL refresh)
wakes nobody. So a lost message, a Sentinel failover or a Cluster node restart
(counters re-seeded) delay an update by one recheck at most, never lose it.

Waiters and streams block on one Condition; they never touch Redis or the
database while they wait.

Only the statistics someone here wants are fetched: watched ones, and ones read
lately, so that polls HIT (live/interest.py); the others stay `behind`. A process
where no statistic is ever read never starts its hub.

With the shared store unusable (circuit open, counters unreadable), holding a
request would mean promising a wake-up nobody can give: `usable()` is False and
waits answer at once. Open streams keep delivering instead: the hub then
recomputes the four statistics from the database at most once a second, and
only while this process has a stream open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from flask import Flask

from electro_isla.cache import EXTENSION_KEY, REDIS_ERRORS, CacheManager, shared_redis
from electro_isla.estadisticas.registro import CACHEADOS
from electro_isla.estadisticas.ventana import meses
from electro_isla.live.fetcher import Fetcher
from electro_isla.live.interest import Interest
from electro_isla.shared_store import shared_store

log = logging.getLogger("electro_isla.live")

# statistic (URL and event name) -> the cached name behind it, in the stream's order
# (the statistics table's, estadisticas/registro.py).
STATS: dict[str, str] = dict(CACHEADOS)
CACHED_NAMES = frozenset(STATS.values())
# When the figures were computed: not part of what changed.
GENERATED_KEYS = ("generado_en", "fecha_generacion")
DEGRADED_SWEEP_SECONDS = 1.0
RESUBSCRIBE_SECONDS = 1.0


def digest_of(body: str) -> str:
    """The figures' hash: the body without its generation timestamps."""
    document = json.loads(body)
    for key in GENERATED_KEYS:
        document.pop(key, None)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Version:
    """One rendering of a statistic: what a GET answers, and its figures' digest."""

    etag: str
    body: str  # compact JSON on one line
    digest: str
    rendered: dict[str, str]  # as the cache gave it: every waiter it wakes answers with it
    at: float  # monotonic time this hub had it: when the change reached this process

    @classmethod
    def of(cls, rendered: dict[str, str]) -> Version:
        body = rendered["body"].strip()
        return cls(rendered["etag"], body, digest_of(body), rendered, time.monotonic())


class LiveHub:
    """Per process: the latest version of each statistic, and the Condition to wait on."""

    def __init__(self, app: Flask, fetch: Callable[[str], dict[str, str]]) -> None:
        self.app = app
        self.fetch = fetch
        self.fetcher = Fetcher(app, fetch, int(app.config["LIVE_FETCH_THREADS"]))
        self.channel = f"{app.config['CACHE_KEY_PREFIX']}:live"
        self.recheck = max(0.05, int(app.config["LIVE_RECHECK_MS"]) / 1000)
        # One lock, two kinds of waiting: streams wake on any statistic's change,
        # a held request only on its own statistic's.
        lock = threading.Lock()
        self.changed = threading.Condition(lock)
        self.changed_stat = {stat: threading.Condition(lock) for stat in STATS}
        self._digests: dict[str, str] = {}  # etag -> digest of the versions seen lately
        # stat -> tags of the versions this hub replaced lately (each older than the current)
        self._replaced: dict[str, deque[str]] = {stat: deque(maxlen=16) for stat in STATS}
        self._refresh_started = 0.0  # monotonic time the latest refresh read the counters
        # stat -> start of the latest refresh whose counter read found its version current
        self._confirmed: dict[str, float] = {}
        self.versions: dict[str, Version] = {}
        self.stopping = False
        # Set by gunicorn.conf.py: False once the worker is told to stop (SIGTERM,
        # max_requests), so held requests answer and streams end at once.
        self.alive: Callable[[], bool] = lambda: True
        # stat -> (generation, month) its version was fetched at; a stat whose
        # counter moved without being fetched (nobody wants it) is in `_behind`.
        self._seen: dict[str, tuple[Any, str]] = {}
        self._behind: frozenset[str] = frozenset()
        self._switches = 0  # Sentinel master changes seen by the last refresh
        self.interest = Interest(
            STATS,
            float(app.config["LIVE_READ_REFRESH_SECONDS"]),
            int(app.config["LIVE_MIN_INTERVAL_MS"]) / 1000,
        )
        self._last_read = 0.0  # monotonic time of the last good read of the counters
        self._last_sweep = 0.0
        self._refresh_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.fetches = 0  # statistics fetched by this hub (bench, tests)

    # -- state -------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        return shared_redis(self.app) is not None

    def usable(self) -> bool:
        """True when a held request can be promised a wake-up."""
        if self.stopping or not self.alive():
            return False
        self.ensure_running()
        if not self.shared:
            return True
        if not self._last_read:
            self.sync()  # the first watcher of this process: read the counters now  # one process: the bump signal reaches the hub directly
        closed = self._manager().breaker.closed
        return closed and time.monotonic() - self._last_read <= max(2.0, 3 * self.recheck)

    def _manager(self) -> CacheManager:
        return self.app.extensions[EXTENSION_KEY]

    def version(self, stat: str) -> Version | None:
        return self.versions.get(stat)

    def current(self, stat: str) -> Version | None:
        """The statistic's version when the hub read the counters within one recheck, else None.

        Every hint and every recheck re-reads them, so such a version is what a
        cache read would answer, bar a change whose hint is still on its way: a
        wait holding that tag is then woken by that very hint.
        """
        if not self._last_read or time.monotonic() - self._last_read > 2 * self.recheck:
            return None
        if stat in self._behind:
            return None
        return self.versions.get(stat)

    def superseded(self, stat: str, tags: Any) -> bool:
        """True when `tags` names a version of `stat` this hub has since replaced."""
        return any(tags.contains_weak(tag) for tag in self._replaced[stat])

    def digest(self, rendered: dict[str, str]) -> str:
        """The figures' digest of a rendering, without parsing it when the hub has seen it."""
        known = self._digests.get(rendered["etag"])
        return known if known is not None else digest_of(rendered["body"].strip())

    def noted_read(self, stat: str) -> None:
        """A request read `stat` here: refresh it after changes for a while (a poll then HITs)."""
        if self.interest.noted_read(stat):
            self.ensure_running()

    def watching(self, stat: str) -> AbstractContextManager[None]:
        """A held request on `stat`: it is refreshed on every change while this lasts."""
        return self.interest.watching(stat)

    def behind(self, stat: str) -> bool:
        """True when the counters moved past this hub's version of `stat` (nobody wanted it)."""
        return stat in self._behind

    @property
    def streams(self) -> int:
        """Open streams of this process."""
        return self.interest.streams

    def stream_opened(self) -> None:
        self.interest.stream(+1)

    def stream_closed(self) -> None:
        self.interest.stream(-1)

    def poke(self) -> None:
        """A local hint (in-process notification, no Redis)."""
        self._poke.set()

    def stop(self) -> None:
        self.stopping = True
        self._poke.set()
        with self.changed:
            self.changed.notify_all()
            for condition in self.changed_stat.values():
                condition.notify_all()

    # -- refreshing ----------------------------------------------------------------

    def _read_generations(self) -> dict[str, Any] | None:
        """The four counters now; None when the shared store cannot answer."""
        manager = self._manager()
        keys = {stat: manager.gen_key(name) for stat, name in STATS.items()}
        client = shared_redis(self.app)
        if client is None:
            return {stat: manager.store.generations([key])[0] for stat, key in keys.items()}
        if not manager.breaker.closed:
            return None
        try:
            # A pipeline, not MGET: on a cluster the four names live in four slots.
            pipe = client.pipeline(transaction=False)
            for key in keys.values():
                pipe.get(key)
            values = pipe.execute()
        except REDIS_ERRORS as exc:
            # The same breaker as every Redis user: requests stop trying it too.
            manager.breaker.trip("live generations", self.channel, exc)
            return None
        return dict(zip(keys, values, strict=True))

    def refresh(self) -> bool:
        """Fetch what moved; wake everyone when some figures changed. True if any did."""
        with self._refresh_lock, self.app.app_context():
            self._refresh_started = time.monotonic()
            mes = meses().actual  # a new month is a new window, without any bump
            switches = shared_store(self.app).master_switches()
            if switches != self._switches:
                # A Sentinel failover this process followed: a fetch around it may have
                # paired the new master's counters with the old master's figures, so
                # everything counts as moved once (a HIT each when nothing did).
                self._switches = switches
                self._seen.clear()
            gens = self._read_generations()
            now = time.monotonic()
            if gens is None:
                # Nothing says what moved: a deferred refresh waits for the next recheck
                # like the rest (left due, the loop found it due again at once: a spin).
                self.interest.due = 0.0
            if gens is not None:
                self._last_read = now
                moved = [s for s in STATS if self._seen.get(s) != (gens[s], mes)]
                stale = self.interest.wanted(moved, now)
                self._behind = frozenset(moved) - frozenset(stale)
                for stat in self.versions.keys() - set(moved):  # unmoved: still current
                    self._confirmed[stat] = self._refresh_started
            elif self.streams > 0 and (
                not self.versions or now - self._last_sweep >= DEGRADED_SWEEP_SECONDS
            ):
                # Degraded: nobody will say what changed; streams are served by a
                # recomputation from the database at most once a second.
                self._last_sweep = now
                stale = list(STATS)
            else:
                stale = []
            changed = False
            try:
                for stat in stale:
                    self.interest.fetched_at[stat] = time.monotonic()
                for stat, fetched in self.fetcher.each(stale):
                    version = Version.of(fetched)
                    self.fetches += 1
                    old = self.versions.get(stat)
                    if old is None or old.etag != version.etag:
                        self.versions[stat] = version
                        if old is not None:
                            self._replaced[stat].append(old.etag)
                    if gens is not None:
                        self._seen[stat] = (gens[stat], mes)
                        self._confirmed[stat] = self._refresh_started
                    if len(self._digests) > 64:
                        self._digests.clear()
                    self._digests[version.etag] = version.digest
                    if old is None or old.digest != version.digest:
                        changed = True
                        # Wake now: this statistic's waits need not wait for the next fetch.
                        with self.changed:
                            self.changed_stat[stat].notify_all()
            finally:
                if changed:
                    # Streams once per refresh: each sends every statistic that moved in one write.
                    with self.changed:
                        self.changed.notify_all()
        return changed

    def confirmed(self, stat: str, since: float) -> Version | None:
        """`stat`'s version if a counter read begun at or after `since` found it current."""
        with self._refresh_lock:
            if self._confirmed.get(stat, 0.0) >= since and stat not in self._behind:
                return self.versions.get(stat)
        return None

    def synced(self, stat: str, since: float) -> Version | None:
        """`stat`'s version from a counter read begun at or after `since` (one if needed)."""
        self.sync(stat, since)
        return self.confirmed(stat, since)

    def sync(self, stat: str | None = None, since: float = 0.0) -> None:
        """Refresh now in the caller's thread (a new watcher must not start behind).

        With `since`: not when a refresh that read the counters at or after `since`
        has already fetched `stat` (what the caller read before `since` is then no
        newer than the hub's version): the waits a change sends back at once queue
        behind one refresh, not one each.
        """
        self.ensure_running()
        try:
            if stat is not None and self.confirmed(stat, since) is not None:
                return
            self.refresh()
        except Exception:  # noqa: BLE001  the database or the cache failing: watchers see it
            log.exception("LIVE refresh failed")

    # -- waiting -------------------------------------------------------------------

    def wait_for(
        self,
        stat: str,
        baseline: str,
        deadline: float,
        gone: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Block until `stat`'s figures differ from `baseline` (True) or the deadline passes."""
        condition = self.changed_stat[stat]
        with condition:
            while True:
                current = self.versions.get(stat)
                if current is not None and current.digest != baseline:
                    return True
                if not self.usable():
                    return False
                now = time.monotonic()
                if now >= deadline or gone():
                    return False
                condition.wait(min(deadline - now, 1.0))

    # -- the background thread ----------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the listener in this process (lazily: after gunicorn's fork)."""
        pid = os.getpid()
        if self._thread is not None and self._pid == pid and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is not None and self._pid == pid and self._thread.is_alive():
                return
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
            self._thread.start()

    def _subscribe(self) -> Any:
        client = shared_redis(self.app)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        return pubsub

    def _listen(self, pubsub: Any, timeout: float) -> bool:
        """True when a relevant hint arrived within `timeout`."""
        message = pubsub.get_message(timeout=timeout)
        hinted = False
        while message is not None:
            if message.get("type") == "message":
                hinted = True
            message = pubsub.get_message(timeout=0)
        return hinted

    def _run(self) -> None:
        pubsub = None
        retry_at = 0.0
        next_check = 0.0
        subscribed_at = 0  # the master switches when the subscription was made
        failures = 0  # subscriptions refused in a row: logged at the first and on success
        while not self.stopping:
            if not self.alive():
                self.stop()
                break
            now = time.monotonic()
            switches = shared_store(self.app).master_switches()
            if pubsub is not None and switches != subscribed_at:
                # Subscribed on the old master: the new one's messages do not reach it.
                self._close(pubsub)
                pubsub, retry_at = None, now
            if self.shared and pubsub is None and now >= retry_at:
                subscribed_at = switches
                try:
                    pubsub = self._subscribe()
                except REDIS_ERRORS as exc:
                    # Once per outage, not once a second per worker while it lasts.
                    if not failures:
                        log.warning("LIVE subscribe failed: %s", type(exc).__name__)
                    failures += 1
                    retry_at = now + RESUBSCRIBE_SECONDS
                else:
                    if failures:
                        log.warning("LIVE subscribed again after %d failed tries", failures)
                    failures = 0
            if self.interest.due:
                next_check = min(next_check, self.interest.due)  # a deferred read-only refresh
            timeout = max(0.0, min(next_check - now, self.recheck))
            hinted = False
            if pubsub is not None:
                try:
                    hinted = self._listen(pubsub, timeout)
                except (*REDIS_ERRORS, OSError) as exc:
                    log.warning("LIVE subscription lost: %s", type(exc).__name__)
                    self._close(pubsub)
                    pubsub = None
                    retry_at = time.monotonic() + RESUBSCRIBE_SECONDS
                    time.sleep(min(timeout, 0.1))
            else:
                hinted = self._poke.wait(timeout)
                self._poke.clear()
            if hinted or time.monotonic() >= next_check:
                next_check = time.monotonic() + self.recheck
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001  keep listening; the next check retries
                    log.exception("LIVE refresh failed")
                    self.interest.due = 0.0  # at the next recheck, not again at once
        if pubsub is not None:
            self._close(pubsub)

    @staticmethod
    def _close(pubsub: Any) -> None:
        try:
            pubsub.close()
        except (*REDIS_ERRORS, OSError):
            pass
