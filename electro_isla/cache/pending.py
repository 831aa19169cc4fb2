"""Generation bumps that could not be applied, kept until a worker can replay them."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("electro_isla.cache")


class PendingInvalidations:
    """Generation bumps that failed, kept in a file every worker of the host sees.

    The file is the durable part: a worker that never saw the outage, or a
    replacement of the worker that failed, finds it and replays it before it
    serves anything from the cache. Memory is the fallback when there is no file.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._path_str = None if path is None else str(path)
        self._memory: set[str] = set()
        self._lock = threading.Lock()

    def empty(self) -> bool:
        return not self._memory and (self._path_str is None or not os.path.exists(self._path_str))

    def __len__(self) -> int:
        return len(self.snapshot())

    def add(self, keys: Iterable[str]) -> None:
        keys = set(keys)
        if self.path is not None:
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
                            fh.write("".join(f"{k}\n" for k in sorted(keys)))
                            return
            except OSError as exc:
                log.warning("ERROR pending file %s: %s", self.path, exc)
        # No file (or it failed): only this process knows, and replays them itself.
        with self._lock:
            self._memory |= keys

    def snapshot(self) -> set[str]:
        with self._lock:
            keys = set(self._memory)
        if self.path is not None:
            try:
                keys |= {line for line in self.path.read_text("utf-8").splitlines() if line}
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("ERROR pending file %s: %s", self.path, exc)
        return keys

    def done(self, keys: set[str]) -> None:
        """Forget `keys` (replayed); keeps what another worker added meanwhile."""
        with self._lock:
            self._memory -= keys
        if self.path is None:
            return
        try:
            with open(self.path, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                left = [line for line in fh.read().splitlines() if line and line not in keys]
                if left:
                    fh.seek(0)
                    fh.truncate()
                    fh.write("".join(f"{k}\n" for k in left))
                else:
                    # Unlink while holding the lock: a concurrent `add` either wrote
                    # before (and was read) or reopens a new file after.
                    self.path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("ERROR pending file %s: %s", self.path, exc)
