"""The write side: generation bumps, applied after COMMIT or drained from the outbox.

A commit's bumps are first recorded in its own transaction (outbox.py, by
listeners.py); after COMMIT `apply_committed` applies them and hands the rows
to the outbox's deleter thread. One Redis did not take stays recorded, and
`catch_up` (the drain, an explicit step of every read) applies it in whichever
process next reaches Redis. A direct `invalidate` (outside a transaction) goes through the same
applier. Every bump that moved a generation passes `applied`: counted, logged,
and sent as `signals.generations_bumped`, the seam live statistics hang on. A
row applied a second time moves nothing (redis_store.py) and sends nothing; a
bump whose script ran but whose reply was lost (a dropped connection) is sent by
no one, and live watchers see it at the hub's next recheck (≤ 1 s).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

import electro_isla.cache.signals as signals
from electro_isla.cache.outbox import Effect, Outbox, OutboxUnreadable
from electro_isla.cache.stores import Parts
from electro_isla.shared_store import REDIS_ERRORS, ReplicationLag

log = logging.getLogger("electro_isla.cache")


class Invalidation:
    """Bumps of one app: direct, post-commit and drained."""

    def __init__(self, parts: Parts, outbox: Outbox, enabled: bool, replay_pause: float) -> None:
        self.parts = parts
        self.outbox = outbox
        self.enabled = enabled
        # After a drain that replicas did not acknowledge in time (the master has
        # it), the next drain waits one breaker interval: a lagging replica must
        # not cost every request a WAIT timeout.
        self.replay_after = 0.0
        self.replay_pause = replay_pause

    def bump_effects(
        self, names: Iterable[str], rows: Iterable[tuple[str, object]]
    ) -> list[Effect]:
        """The outbox effects invalidating `names` and (name, row) pairs (none when disabled)."""
        if not self.enabled:
            return []
        gen_key = self.parts.keys.gen_key
        targets = {gen_key(n) for n in names} | {gen_key(n, r) for n, r in rows}
        return [Effect("bump", k) for k in sorted(targets)]

    # -- applying ------------------------------------------------------------------

    def invalidate(self, effects: list[Effect]) -> None:
        """Bump now (a direct invalidation); into the outbox if Redis cannot take it."""
        if not effects:
            return
        if not self.parts.breaker.allow() or not self.catch_up():
            self._remember(effects)
            return
        try:
            self.outbox.apply(effects)
        except REDIS_ERRORS as exc:
            self.parts.counting.failed("invalidate", ",".join(e.target for e in effects), exc)
            self._remember(effects)
            return
        self.parts.breaker.success()

    def apply_committed(self, effects: list[Effect]) -> None:
        """After COMMIT: apply what the transaction recorded; its rows go to the deleter.

        What Redis does not take stays recorded; the drain applies it.
        """
        if not effects:
            return
        if not self.outbox.durable:  # in-process: nothing to survive, nothing can fail
            self.outbox.apply(effects)
            return
        # No drain first: it would apply this commit's own rows a second time.
        if not self.parts.breaker.allow():
            self._left(effects)
            return
        try:
            self.outbox.apply(effects)
        except REDIS_ERRORS as exc:
            self.parts.counting.failed("invalidate", ",".join(e.target for e in effects[:5]), exc)
            self._left(effects)
            return
        self.parts.breaker.success()

    def apply_bumps(self, effects: list[Effect]) -> None:
        """The outbox's applier of "bump" effects (raises a Redis error).

        A bump applied twice (a drain racing the writer's own apply) moves its
        generation once: the store marks each row it applied. Only the keys that
        moved are announced, so one change wakes its watchers once.
        """
        marks: dict[str, list[str]] = defaultdict(list)
        for e in effects:
            marks[e.target] += [] if e.mark is None else [e.mark]
        try:
            moved = self.parts.store.bump(sorted(marks), marks)
        except ReplicationLag as lag:  # the master moved them: watchers may re-read now
            self.applied(lag.done)
            raise
        self.applied(moved)

    def applied(self, keys: list[str]) -> None:
        """Every bump that moved a generation passes here (post-commit and replays)."""
        if not keys:
            return
        names = set()
        for key in keys:
            name = self.parts.keys.name_of(key)
            names.add(name)
            self.parts.counting.invalidated(name, key)
        signals.generations_bumped.send(self.parts.app, names=frozenset(names), keys=tuple(keys))

    def _left(self, effects: list[Effect]) -> None:
        if any(e.row is not None for e in effects):
            self.outbox.waiting()  # this process drains them as soon as Redis answers
        log.warning("INVALIDATE pending (cache unavailable) %d effect(s)", len(effects))

    def _remember(self, effects: list[Effect]) -> None:
        self.outbox.add(effects)
        log.warning("INVALIDATE pending (cache unavailable) %d effect(s)", len(effects))

    # -- the drain -----------------------------------------------------------------

    def catch_up(self) -> bool:
        """Apply what the outbox holds; True when the store may be trusted now.

        Called once the breaker allowed the caller in. Cheap when nothing waits:
        `outbox.empty()` asks the database at most once per interval.
        """
        if time.monotonic() < self.replay_after or self.outbox.empty():
            return True
        try:
            drained = self.outbox.drain()
        except ReplicationLag as exc:
            self.parts.counting.failed("invalidate", "pending", exc)
            self.replay_after = time.monotonic() + self.replay_pause
            return True
        except REDIS_ERRORS as exc:
            self.parts.counting.failed("invalidate", "pending", exc)
            return False
        except OutboxUnreadable:
            return False  # the database's trouble, not Redis's: the breaker is left alone
        self.parts.breaker.success()
        if drained:
            log.info("INVALIDATE replayed %d pending effect(s)", drained)
        return True

    @property
    def pending(self) -> int:
        """Outbox rows of this prefix not yet applied (a query only when some may be)."""
        return 0 if self.outbox.empty() else self.outbox.count()
