"""The token-and-role re-checks of held clients, read once for every client that needs one.

A change wakes every wait of a statistic at once, and each must re-check its
token (revoked?) and its usuario (still active, still staff?) before it answers
(API.md "Live statistics"); streams do the same every LIVE_AUTH_CHECK_SECONDS.
Done one by one, that was a JWT decode and two Redis round trips per client: the
largest part of a held client's server CPU (bench/live.py, py-spy).

Here the clients that need a check at the same moment share one reading, like a
group commit: the first becomes the reader, the ones arriving while it reads
queue for the next reading, which then covers all of them. A reading covers a
client only if it STARTED after the client asked (`since`): for a wait woken by
a change, after that change reached the process, so it sees the token and role
as they are after the change that woke it. The held waits are known (`held`),
so the first one a change wakes reads for all of them: one reading per change,
not one for the first waker and a second for everyone who woke while it read.

The revocations of every queued token are one ZMSCORE (auth/tokens.py) and the
usuarios one query, however many there are (a cache lookup per usuario took
~40 ms of each change's wake on a busy worker: bench/live.py with a trace). The
token is not decoded again: its signature and claims were checked when the
request came in, and only its expiry depends on time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from flask_jwt_extended import get_jwt

from electro_isla.auth.permissions import current_actor
from electro_isla.auth.tokens import revocation_keys, revocations
from electro_isla.usuarios.service import posturas

REVOKED = "revoked"
INACTIVE = "inactive"
KEEP_SECONDS = 10.0  # readings older than this are forgotten (no reader asks that far back)

Holder = tuple[str, int]  # (the token's revocation keys, space-separated; usuario_id)


def current_holder() -> Holder:
    """The holder of the request being answered: its token's revocation keys
    (auth/tokens.py: its login's and its jti) and its usuario."""
    return (" ".join(revocation_keys(get_jwt())), current_actor().id)


def read_now(holders: Iterable[Holder]) -> dict[Holder, str]:
    """Each holder's standing now: REVOKED, INACTIVE or the usuario's role."""
    holders = set(holders)
    keys = {key for token, _ in holders for key in token.split()}
    revoked_keys = revocations().revoked_among(keys)
    revoked = {t for t, _ in holders if not t.split() or revoked_keys & set(t.split())}
    found = posturas(u for t, u in holders if t not in revoked)
    roles = {u: rol if active else INACTIVE for u, (rol, active) in found.items()}
    return {(t, u): REVOKED if t in revoked else roles.get(u, INACTIVE) for t, u in holders}


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
        self._held: Counter[Holder] = Counter()  # the holders of the waits held now
        self.reads = 0  # readings made (tests)

    @property
    def queued(self) -> int:
        """Holders waiting for the next reading (tests)."""
        with self._lock:
            return len(self._queued)

    @contextmanager
    def held(self, jti: str, usuario_id: int) -> Iterator[None]:
        """A wait of this holder is held: every reading while it lasts covers it too."""
        holder = (jti, usuario_id)
        with self._lock:
            self._held[holder] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[holder] -= 1
                if self._held[holder] <= 0:
                    del self._held[holder]

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
            batch = self._queued | {holder} | self._held.keys()
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
