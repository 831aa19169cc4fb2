"""The transactional outbox: what a commit owes Redis, recorded in the commit itself.

A write's generation bumps and a logout's revocations are shared-state effects:
losing one serves stale data, or revives a logged-out token. So the session's
listeners (listeners.py) insert them as `cache_pending` rows *before* COMMIT,
in the writer's own transaction: a rollback discards them with the write, and a
COMMIT makes them as durable as the write. After COMMIT the writer applies them
to Redis and deletes its rows. Whatever it could not apply (it died, was
killed, or Redis was down, paused or slow to replicate) stays in the table, and
any process of any host applies it before it next trusts Redis: the drain.

Cost and bound. A lookup must not query the database: `empty()` answers from
what it knew, and asks the table at most once per `check_seconds`
(CACHE_PENDING_CHECK_MS, 250 ms by default) per process, one indexed
`SELECT EXISTS` (sooner only right after a drain that applied rows, or when
this process itself left rows behind). A row is therefore drained at most `check_seconds` after its
COMMIT by any process that is using Redis (sooner by its writer).

Applying twice is harmless (a revocation is a set member with its expiry; a
bump carries its row's mark, and Redis moves a generation once per row however
often it is applied: redis_store.py), so a drain may race the writer's own
apply, and a delete that is lost costs one more apply. So the writer deletes
its rows in one autocommitted statement that does not wait for the disk (PostgreSQL), and
a failed delete is only logged. On PostgreSQL that statement runs off the
request path: a per-process thread (`RowDeleter`) deletes applied rows in
batches, so a write answers once Redis has its bumps, not after two more round
trips; a process that dies first leaves rows that the drain applies once more.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from flask import Flask
from sqlalchemy import delete, exists, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from electro_isla.cache.models import OutboxEntry
from electro_isla.db_types import utcnow

log = logging.getLogger("electro_isla.cache")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows a drain reads and applies at a time.
DRAIN_PAGE = 5_000


class OutboxUnreadable(Exception):
    """The table could not be read: what it holds is unknown, so Redis is not trusted."""


class Effect(NamedTuple):
    """One thing a commit owes Redis: `kind` names who applies it."""

    kind: str
    target: str
    expires_at: float | None = None  # epoch seconds, for effects that lapse (revocations)
    row: int | None = None  # its outbox row, once recorded
    at: int | None = None  # the row's created_at in µs since the epoch: with `row`, its mark

    @property
    def mark(self) -> str | None:
        """What names this recorded row for good: its id and when it was written (SQLite
        gives a deleted row's id to the next row)."""
        return None if self.row is None else f"{self.row}.{self.at}"


def micros(when: datetime) -> int:
    """`when` in whole microseconds since the epoch (no float rounding)."""
    return (when - EPOCH) // timedelta(microseconds=1)


# kind -> (app -> function applying a batch of that kind; raises a Redis error on failure)
Applier = Callable[[list[Effect]], None]
_APPLIERS: dict[str, Callable[[Flask], Applier]] = {}


def register_applier(kind: str, factory: Callable[[Flask], Applier]) -> Callable | None:
    """Say who applies effects of `kind` (once per process, at import); the previous one."""
    previous = _APPLIERS.get(kind)
    _APPLIERS[kind] = factory
    return previous


def _table() -> Any:
    return OutboxEntry.__table__


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class RowDeleter:
    """Deletes applied rows on its own thread, in batches: a write does not wait for it.

    One thread per process, started on first use (after gunicorn's fork) and
    flushed at exit. `settle()` waits until what was submitted is deleted. The
    thread holds the deleter only while it looks for work or deletes, and the exit
    hook holds it weakly: a dropped app (a test session builds hundreds) is freed
    with its engine and cache by the next full collection (deleter and outbox
    form a cycle), and its thread ends within `IDLE_LOOK` seconds of that,
    instead of keeping them all alive for good.
    """

    IDLE_LOOK = 1.0  # seconds: how often an idle thread looks whether its deleter was freed

    def __init__(self, delete_now: Callable[[list[int]], None]) -> None:
        self.delete_now = delete_now
        self._cond = threading.Condition()
        self._queued: list[int] = []
        self._deleting: list[int] = []
        self._pid: int | None = None

    def submit(self, ids: list[int]) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (or a forked child)
                self._pid = os.getpid()
                self._queued, self._deleting = [], []
                me = weakref.ref(self)
                threading.Thread(
                    target=RowDeleter.run, args=(me, self._cond), name="outbox-deleter", daemon=True
                ).start()
                atexit.register(settle_at_exit, me)
            self._queued.extend(ids)
            self._cond.notify_all()

    def unfinished(self) -> set[int]:
        """Ids applied by this process whose rows are not deleted yet."""
        with self._cond:
            return set(self._queued) | set(self._deleting)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted id is deleted (or failed to be); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queued and not self._deleting, timeout)

    def take(self) -> list[int]:
        """The queued ids, now being deleted (empty when none are queued)."""
        with self._cond:
            self._deleting, self._queued = self._queued, []
            return list(self._deleting)

    def delete(self, ids: list[int]) -> None:
        try:
            self.delete_now(ids)
        except Exception:  # never let the thread die: the drain re-applies what is left
            log.exception("ERROR outbox deleter")
        finally:
            with self._cond:
                self._deleting = []
                self._cond.notify_all()

    @staticmethod
    def run(ref: weakref.ref[RowDeleter], cond: threading.Condition) -> None:
        """The deleter thread: it holds its deleter only while there is work to do."""
        while True:
            with cond:  # submit() queues under it too: no wake-up is missed
                deleter = ref()
                if deleter is None:
                    return
                ids = deleter.take()
                if not ids:
                    del deleter
                    cond.wait(RowDeleter.IDLE_LOOK)
                    continue
            deleter.delete(ids)
            del deleter


def settle_at_exit(ref: weakref.ref[RowDeleter]) -> None:
    deleter = ref()
    if deleter is not None:
        deleter.settle(2.0)


class Outbox:
    """The outbox rows of one key prefix: recorded, applied, drained."""

    def __init__(
        self,
        app: Flask,
        engine: Callable[[], Any],
        prefix: str,
        check_seconds: float,
        durable: bool,
    ) -> None:
        self.app = app
        self._engine = engine
        self.prefix = prefix
        self.check_seconds = check_seconds
        self.durable = durable
        self._nonempty = False
        self._next_check = 0.0
        self._check_lock = threading.Lock()
        self.deleter = RowDeleter(self.delete_now)

    # -- in the writer's transaction ---------------------------------------------

    def record(self, connection: Connection, effects: Iterable[Effect]) -> list[Effect]:
        """Insert `effects` on the writer's connection (its open transaction); the
        effects as recorded, each with its row id. Not durable: `effects` as given."""
        effects = sorted(effects)
        if not self.durable or not effects:
            return effects
        now = utcnow()
        rows = [
            {
                "prefix": self.prefix,
                "kind": e.kind,
                "target": e.target,
                "expires_at": _when(e.expires_at),
                "created_at": now,
            }
            for e in effects
        ]
        table = _table()
        ids = connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        at = micros(now)
        return [
            Effect(e.kind, e.target, e.expires_at, int(i), at)
            for e, i in zip(effects, ids, strict=True)
        ]

    def add(self, effects: Iterable[Effect]) -> bool:
        """Record effects outside any write (a direct invalidation that failed); False if lost."""
        effects = list(effects)
        if not effects or not self.durable:
            return True
        try:
            with self._engine().begin() as conn:
                self.record(conn, effects)
        except SQLAlchemyError as exc:
            log.error(
                "ERROR outbox: %s; %d effect(s) not recorded", type(exc).__name__, len(effects)
            )
            return False
        self.waiting()
        return True

    # -- applying ------------------------------------------------------------------

    def apply(self, effects: Iterable[Effect]) -> None:
        """Apply `effects` (every kind), then delete their rows; a Redis error leaves the rows."""
        by_kind: dict[str, list[Effect]] = defaultdict(list)
        for effect in effects:
            by_kind[effect.kind].append(effect)
        for kind, batch in sorted(by_kind.items()):
            factory = _APPLIERS.get(kind)
            if factory is None:
                log.error("ERROR outbox: nobody applies %r effects; rows kept", kind)
                return
            factory(self.app)(batch)
        self.delete(e.row for batch in by_kind.values() for e in batch if e.row is not None)

    def delete(self, ids: Iterable[int]) -> None:
        """Delete applied rows: on PostgreSQL by the deleter thread, elsewhere now."""
        ids = list(ids)
        if not ids:
            return
        if self._engine().dialect.name == "postgresql":
            self.deleter.submit(ids)
        else:
            self.delete_now(ids)

    def delete_now(self, ids: list[int]) -> None:
        table = _table()
        try:
            # One statement, autocommitted: no BEGIN/COMMIT round trips; on PostgreSQL
            # a function (migration 0005) that does not wait for the disk either.
            with self._engine().connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT cache_pending_done(:ids)"), {"ids": ids})
                else:
                    conn.execute(delete(table).where(table.c.id.in_(ids)))
        except SQLAlchemyError as exc:
            log.warning("ERROR outbox delete: %s (re-applied later)", type(exc).__name__)

    # -- the drain -----------------------------------------------------------------

    def waiting(self) -> None:
        """This process left rows behind: drain before trusting Redis, whatever the interval."""
        self._nonempty = True

    def empty(self) -> bool:
        """True unless rows may be waiting: what the last look saw, refreshed once per interval.

        A thread that finds the look due while another is looking waits for that
        answer: answering from the old one could trust Redis over a row just seen.
        """
        if not self.durable:
            return True
        if time.monotonic() < self._next_check:
            return not self._nonempty
        with self._check_lock:
            started = time.monotonic()
            if started < self._next_check:  # another thread just looked
                return not self._nonempty
            table = _table()
            query = select(exists().where(table.c.prefix == self.prefix))
            try:
                with self._engine().connect() as conn:
                    self._nonempty = bool(conn.execute(query).scalar())
            except SQLAlchemyError as exc:
                log.warning("ERROR outbox check: %s", type(exc).__name__)
            self._next_check = started + self.check_seconds
        return not self._nonempty

    def rows(self) -> tuple[list[int], list[Effect]]:
        """(ids, effects) of the rows of this prefix this process can apply now."""
        page = self._page()
        return ([], []) if page is None else page[1:]

    def _page(
        self, after: int = 0, limit: int | None = None
    ) -> tuple[int | None, list[int], list[Effect]] | None:
        """(last id read, if `limit` rows were read, else None; ids; effects) of the
        rows after id `after` this process can apply now; None if the read failed."""
        # Applied by this process, delete under way. Taken *before* the read: a delete
        # that ends during the read leaves the row in the result but not in the set.
        mine = self.deleter.unfinished()
        found = self._read(after, limit)
        if found is None:
            return None
        full = limit is not None and len(found) == limit
        return (int(found[-1].id) if full else None, *self._applicable(found, mine))

    def _read(self, after: int, limit: int | None) -> list[Any] | None:
        """This prefix's rows after id `after`, in id order, at most `limit`; None on error."""
        table = _table()
        query = (
            select(table.c.id, table.c.kind, table.c.target, table.c.expires_at, table.c.created_at)
            .where(table.c.prefix == self.prefix, table.c.id > after)
            .order_by(table.c.id)
            .limit(limit)
        )
        try:
            with self._engine().connect() as conn:
                return list(conn.execute(query).all())
        except SQLAlchemyError as exc:
            log.warning("ERROR outbox read: %s", type(exc).__name__)
            return None

    def _applicable(self, found: list[Any], mine: set[int]) -> tuple[list[int], list[Effect]]:
        """The rows read that are not this process's deletes under way, of known kinds."""
        unknown = {r.kind for r in found} - set(_APPLIERS)
        if unknown:  # e.g. a newer release's kind during a rolling deploy: left to it
            log.warning("outbox: rows of kind(s) %s left to a process that applies them", unknown)
        found = [r for r in found if int(r.id) not in mine and r.kind in _APPLIERS]
        ids = [int(r.id) for r in found]
        effects = [
            Effect(
                r.kind,
                r.target,
                None if r.expires_at is None else r.expires_at.timestamp(),
                int(r.id),
                micros(r.created_at),
            )
            for r in found
        ]
        return ids, effects

    def drain(self) -> int:
        """Apply and delete what is waiting, DRAIN_PAGE rows at a time; how many.

        Raises a Redis error, or OutboxUnreadable when a page cannot be read, leaving
        the rest for the next drain. Paged so that a long outage's backlog is never
        held whole in a worker's memory nor sent to Redis as one script call.
        """
        applied, after = 0, 0
        while after is not None:
            page = self._page(after, DRAIN_PAGE)
            if page is None:
                self._next_check = 0.0
                raise OutboxUnreadable(f"{applied} row(s) applied before the read failed")
            after, ids, effects = page
            if ids:
                self.apply(effects)
                applied += len(ids)
        if not applied:
            self._nonempty = False
            return 0
        self._next_check = 0.0  # look again soon: rows may have arrived meanwhile
        return applied

    def count(self) -> int:
        """Rows of this prefix waiting now (for stats and tests; one query).

        Rows this process applied and is deleting are not waiting: not counted
        (another process's such rows are, for the few milliseconds they last).
        """
        if not self.durable:
            return 0
        table = _table()
        query = select(func.count()).select_from(table).where(table.c.prefix == self.prefix)
        mine = self.deleter.unfinished()  # before the read, as in rows()
        if mine:
            query = query.where(table.c.id.not_in(sorted(mine)))
        try:
            with self._engine().connect() as conn:
                return int(conn.execute(query).scalar() or 0)
        except SQLAlchemyError as exc:
            log.warning("ERROR outbox read: %s", type(exc).__name__)
            return 0
