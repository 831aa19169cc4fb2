"""The token-and-role re-checks of held clients, read once for every client that needs one.

A change wakes every wait of a statistic at once, and each must re-check its
token (revoked?) and its usuario (still active, still staff?) before it answers
(API.md "Live statistics"); streams do the same every LIVE_AUTH_CHECK_SECONDS.
Done one by one, that was a JWT decode and two Redis round trips per client: the
largest part of a held client's server CPU (bench/live.py, py-spy).

Here the clients that need a check at the same moment share one reading, like a
group commit: the first becomes the reader, the ones arriving while it reads
queue for the next reading, which then covers all of them. A reading covers a
client only if it STARTED after the client asked (`since`), so a wait woken by a
change sees the token and role as they are after its wake, as before. The
revocations of every queued token are one ZMSCORE (auth/tokens.py), each usuario
is read once however many of its clients wait, and the token is not decoded
again: its signature and claims were checked when the request came in, and only
its expiry depends on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from electro_isla.auth.permissions import load_acceso
from electro_isla.auth.tokens import revocations

REVOKED = "revoked"
INACTIVE = "inactive"
KEEP_SECONDS = 10.0  # readings older than this are forgotten (no reader asks that far back)

Holder = tuple[str, int]  # (jti, usuario_id)


def read_now(holders: Iterable[Holder]) -> dict[Holder, str]:
    """Each holder's standing now: REVOKED, INACTIVE or the usuario's role."""
    holders = set(holders)
    tokens = {jti for jti, _ in holders if jti}
    revoked = {jti for jti, _ in holders if not jti} | revocations().revoked_among(tokens)
    roles: dict[int, str] = {}
    for usuario_id in {u for jti, u in holders if jti not in revoked}:
        acceso = load_acceso(usuario_id)
        roles[usuario_id] = acceso["rol"] if acceso and acceso["is_active"] else INACTIVE
    return {(jti, u): REVOKED if jti in revoked else roles[u] for jti, u in holders}


class Rechecks:
    """Per process: the latest reading of each holder, and who reads next."""

    def __init__(self, read: Callable[[Iterable[Holder]], dict[Holder, str]] = read_now) -> None:
        self.read = read
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._readings: dict[Holder, tuple[float, str]] = {}  # holder -> (started, standing)
        self._queued: set[Holder] = set()  # for the next reading
        self._batch: set[Holder] = set()  # in the reading under way, started at _batch_started
        self._batch_started = 0.0
        self._reading = False
        self.reads = 0  # readings made (tests)

    def standing(self, jti: str, usuario_id: int, since: float) -> str:
        """REVOKED, INACTIVE or the role, from a reading started at or after `since`."""
        holder = (jti, usuario_id)
        with self._lock:
            while True:
                found = self._readings.get(holder)
                if found is not None and found[0] >= since:
                    return found[1]
                if not self._reading:
                    break
                if holder not in self._batch or self._batch_started < since:
                    self._queued.add(holder)
                self._done.wait(1.0)
            self._reading = True
            started = time.monotonic()
            batch = self._queued | {holder}
            self._batch, self._batch_started, self._queued = batch, started, set()
        result: dict[Holder, str] = {}
        try:
            result = self.read(batch)
        finally:
            with self._lock:
                if len(self._readings) > 4096:
                    self._readings = {
                        h: r for h, r in self._readings.items() if r[0] > started - KEEP_SECONDS
                    }
                for h, standing in result.items():
                    self._readings[h] = (started, standing)
                self.reads += 1
                self._reading = False
                self._batch = set()
                self._done.notify_all()
        return result[holder]
