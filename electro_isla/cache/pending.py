"""Generation bumps that could not be applied, kept until a worker can replay them.

Kept in two places at once, and in memory only if both fail:

- the `cache_pending` table (PostgreSQL, shared by every host): a lost
  invalidation is visible to the workers of *every* host, not only to those of
  the host that lost it;
- a marker file per host, checked with one stat() per lookup: the host's own
  workers see it at once, and it still works while the database does not;
- this process's memory (the last resort).

A replay removes what it read from both; a host whose file still holds an
entry another host already replayed from the table bumps it once more, which
is harmless.

Every entry is unique (a row id, a nonce per file line, a nonce per memory
entry), and a replay removes exactly the entries its snapshot read: a key
added again by another worker after the snapshot stays pending.

Cost and bound. A lookup must not query the database: `empty()` answers from
what it knew, and asks the table at most once per `check_seconds`
(CACHE_PENDING_CHECK_MS, 250 ms by default) per process, one indexed
`SELECT … LIMIT 1`. A row another host wrote is therefore seen here at most
`check_seconds` after it was committed. The row is written as soon as the bump
fails, i.e. after the writer's own Redis timeout (REDIS_SOCKET_TIMEOUT, 0.25 s)
or its WAIT timeout, while Redis is still not answering the writer; so a worker
elsewhere can use an entry the lost bump should have killed only if Redis
answers it within `check_seconds` of that row's commit. Set it lower to shrink
that window (each process then asks the table more often), 0 to ask on every
lookup.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("electro_isla.cache")


@dataclass(frozen=True)
class Snapshot:
    """What one replay read: the keys, and exactly which entries hold them."""

    keys: frozenset[str] = frozenset()
    memory: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()
    ids: tuple[int, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class SharedPending:
    """The `cache_pending` rows of one key prefix, read at most once per interval."""

    def __init__(self, engine: Callable[[], Any], prefix: str, check_seconds: float) -> None:
        self._engine = engine
        self.prefix = prefix
        self.check_seconds = check_seconds
        self._nonempty = False
        self._next_check = 0.0
        self._check_lock = threading.Lock()

    @property
    def _table(self) -> Any:
        from electro_isla.cache.models import PendingInvalidation

        return PendingInvalidation.__table__

    def add(self, keys: set[str]) -> bool:
        """Insert one row per key; False when the database did not take them."""
        from electro_isla.db_types import utcnow

        now = utcnow()
        rows = [{"prefix": self.prefix, "gen_key": k, "created_at": now} for k in sorted(keys)]
        try:
            with self._engine().begin() as conn:
                conn.execute(insert(self._table), rows)
        except SQLAlchemyError as exc:
            log.warning("ERROR pending table: %s", type(exc).__name__)
            return False
        self._nonempty = True
        return True

    def maybe_nonempty(self) -> bool:
        """True when rows may be waiting: what the last look saw, refreshed once per interval."""
        now = time.monotonic()
        if now < self._next_check or not self._check_lock.acquire(blocking=False):
            return self._nonempty
        try:
            self._next_check = now + self.check_seconds
            table = self._table
            query = select(exists().where(table.c.prefix == self.prefix))
            with self._engine().connect() as conn:
                self._nonempty = bool(conn.execute(query).scalar())
        except SQLAlchemyError as exc:
            log.warning("ERROR pending table: %s", type(exc).__name__)
        finally:
            self._check_lock.release()
        return self._nonempty

    def rows(self) -> list[tuple[int, str]]:
        table = self._table
        query = select(table.c.id, table.c.gen_key).where(table.c.prefix == self.prefix)
        try:
            with self._engine().connect() as conn:
                rows = [(int(i), str(k)) for i, k in conn.execute(query)]
        except SQLAlchemyError as exc:
            log.warning("ERROR pending table: %s", type(exc).__name__)
            return []
        if not rows:
            self._nonempty = False
        return rows

    def delete(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        table = self._table
        try:
            with self._engine().begin() as conn:
                conn.execute(delete(table).where(table.c.id.in_(ids)))
        except SQLAlchemyError as exc:
            log.warning("ERROR pending table: %s", type(exc).__name__)
        self._next_check = 0.0  # look again on the next lookup: others may be left


class PendingInvalidations:
    """Failed generation bumps: in the shared table, else the host's file, else memory.

    The file is the per-host fallback: a worker that never saw the outage, or
    a replacement of the worker that failed, finds it and replays it before
    it serves anything from the cache.
    """

    def __init__(self, path: Path | None, shared: SharedPending | None = None) -> None:
        self.path = path
        self.shared = shared
        self._path_str = None if path is None else str(path)
        self._memory: dict[str, str] = {}  # nonce -> key
        self._lock = threading.Lock()

    def empty(self) -> bool:
        if self._memory:
            return False
        if self._path_str is not None and os.path.exists(self._path_str):
            return False
        return self.shared is None or not self.shared.maybe_nonempty()

    def __len__(self) -> int:
        return len(self.snapshot())

    def add(self, keys: Iterable[str]) -> None:
        keys = set(keys)
        if not keys:
            return
        # The file first: the host's other workers see it on their next lookup (a
        # stat()); the table for every other host (within its check interval).
        in_file = self.path is not None and self._add_to_file(keys)
        in_table = self.shared is not None and self.shared.add(keys)
        if in_file or in_table:
            return
        # No file (or it failed): only this process knows, and replays them itself.
        with self._lock:
            for key in keys:
                self._memory[uuid.uuid4().hex] = key

    def _add_to_file(self, keys: set[str]) -> bool:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fcntl.flock(fh, fcntl.LOCK_EX)
                    # A replayer may have unlinked the file while we waited for
                    # the lock: writing to that inode would lose the keys.
                    try:
                        same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
                    except FileNotFoundError:
                        same = False
                    if same:
                        fh.write("".join(f"{uuid.uuid4().hex} {k}\n" for k in sorted(keys)))
                        return True
        except OSError as exc:
            log.warning("ERROR pending file %s: %s", self.path, exc)
            return False

    def snapshot(self) -> Snapshot:
        with self._lock:
            memory = dict(self._memory)
        lines: set[str] = set()
        if self.path is not None:
            try:
                lines = {ln for ln in self.path.read_text("utf-8").splitlines() if " " in ln}
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("ERROR pending file %s: %s", self.path, exc)
        rows = self.shared.rows() if self.shared is not None else []
        keys = {*memory.values(), *(ln.split(" ", 1)[1] for ln in lines), *(k for _, k in rows)}
        return Snapshot(
            frozenset(keys), frozenset(memory), frozenset(lines), tuple(i for i, _ in rows)
        )

    def done(self, snapshot: Snapshot) -> None:
        """Forget exactly the entries `snapshot` read; whatever was added since stays."""
        with self._lock:
            for nonce in snapshot.memory:
                self._memory.pop(nonce, None)
        if self.shared is not None:
            self.shared.delete(snapshot.ids)
        if self.path is None or not snapshot.lines:
            return
        try:
            with open(self.path, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                left = [ln for ln in fh.read().splitlines() if ln and ln not in snapshot.lines]
                if left:
                    fh.seek(0)
                    fh.truncate()
                    fh.write("".join(f"{ln}\n" for ln in left))
                else:
                    # Unlink while holding the lock: a concurrent `add` either wrote
                    # before (and was read) or reopens a new file after.
                    self.path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("ERROR pending file %s: %s", self.path, exc)
