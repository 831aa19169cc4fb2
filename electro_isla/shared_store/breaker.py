"""The circuit breaker in front of the shared Redis, and the log lines of an outage.

Every store that talks to Redis (cache lookups, invalidations, token
revocations, login limits, stats) reports through one breaker, so whichever
meets a failure first writes the outage's ERROR line to cache.log, and the
others simply bypass while it stays open.

Only unavailability opens it. A WAIT that too few replicas acknowledged in
time (`ReplicationLag`) means the master did the write and answers: sending
every read to the database and making login limits per-process for a lag
would turn a slow replica into an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

# Everything a Redis call may raise that means "the cache is not usable now":
# cluster routing errors (e.g. slots without a node) are not RedisErrors.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

log = logging.getLogger("electro_isla.cache")
# The outage's first line and its end, also on the app's own log (standard error): the
# cache log is a file in LOG_DIR, which a container's `docker logs` never shows.
outages = logging.getLogger("electro_isla.shared_store")


class ReplicationLag(RedisError):
    """A write the master applied but too few replicas acknowledged in time.

    A failover could promote a replica without it, so the caller keeps it to
    apply again; the server itself answered, so it is no outage. `done`: what
    the master did apply (a bump's moved keys), for the caller to announce.
    """

    def __init__(self, message: str, done: list[str] | None = None) -> None:
        super().__init__(message)
        self.done = done or []


def is_outage(error: BaseException | None) -> bool:
    """True when `error` means the shared store cannot be used now."""
    return not isinstance(error, ReplicationLag)


class CircuitBreaker:
    """Closed until a failure; open for `reset_seconds`; then one caller probes.

    While one probe is in flight the others keep bypassing, so a hung server
    costs one socket timeout per interval and process, not one per request.

    Logging: the failure that opens the circuit writes one ERROR line (operation,
    key, exception); while it stays open at most one ERROR line per interval
    says so; the success that closes it writes one INFO line. The opening and the
    closing are also written to the app's log (`outages`).
    """

    def __init__(self, reset_seconds: float) -> None:
        self.reset_seconds = reset_seconds
        self._open_until = 0.0  # 0.0 means closed
        self._opened_at = 0.0
        self._last_logged = 0.0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._open_until == 0.0

    @property
    def is_open(self) -> bool:
        return not self.closed

    def allow(self) -> bool:
        if self._open_until == 0.0:
            return True
        now = time.monotonic()
        with self._lock:
            if self._open_until == 0.0:
                return True
            if now < self._open_until:
                return False
            self._open_until = now + self.reset_seconds  # this caller is the probe
            return True

    def trip(
        self, operation: str = "redis", key: str = "-", error: BaseException | None = None
    ) -> None:
        """Open the circuit after `operation` on `key` failed with `error`.

        A replication lag is logged (WARNING) and leaves the circuit as it is.
        """
        if not is_outage(error):
            log.warning("LAG %s %s %s (circuit stays closed)", operation, key, error)
            return
        now = time.monotonic()
        with self._lock:
            opening = self._open_until == 0.0
            self._open_until = now + self.reset_seconds
            if opening:
                self._opened_at = now
            due = opening or now - self._last_logged >= self.reset_seconds
            if due:
                self._last_logged = now
        if not due:
            return
        reason = "-" if error is None else f"{type(error).__name__}: {error}"
        if opening:
            log.error(
                "ERROR %s %s %s (cache unavailable, circuit open for %ss)",
                operation,
                key,
                reason,
                self.reset_seconds,
            )
            outages.error("Redis unavailable (%s): answering from the database", reason)
        else:
            log.error(
                "ERROR %s %s %s (cache still unavailable for %.1fs)",
                operation,
                key,
                reason,
                now - self._opened_at,
            )

    def success(self) -> None:
        if self._open_until == 0.0:
            return
        with self._lock:
            if self._open_until == 0.0:
                return
            self._open_until = 0.0
            down = time.monotonic() - self._opened_at
        log.info("RECOVERED cache available again after %.1fs; circuit closed", down)
        outages.warning("Redis available again after %.1fs", down)


class RedisHealth:
    """What a Redis-backed store beside the cache (revocations, login limits) needs.

    The shared client when it may be used now, and the breaker to report to, so
    an outage met first by such a store opens the circuit and is logged the same way.
    """

    def __init__(self, client: Any, breaker: CircuitBreaker) -> None:
        self._client = client
        self.breaker = breaker

    @property
    def shared(self) -> bool:
        return self._client is not None

    def client(self) -> Any:
        """The shared client, or None (no Redis configured, or the circuit is open)."""
        if self._client is None or not self.breaker.allow():
            return None
        return self._client

    def worked(self) -> None:
        self.breaker.success()

    def failed(self, operation: str, key: str, error: BaseException) -> None:
        self.breaker.trip(operation, key, error)
