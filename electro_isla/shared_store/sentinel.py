"""A Sentinel master pool that follows a failover within REDIS_SENTINEL_CHECK_MS.

redis-py asks the sentinels where the master is only when it opens a
connection. Pooled connections keep talking to the old master, and in a
failover where that server stays up (`SENTINEL FAILOVER`, a network partition)
it goes on answering reads and taking writes as a master until the sentinels
demote it, about 10 s later. A process whose pool is already warm then reads
generations that another process's bumps on the new master have left behind,
and the live hub could pair the new master's counters with the old master's
figures (tests/cache/test_sentinel.py).

Here a background thread per process asks the sentinels every
REDIS_SENTINEL_CHECK_MS; on a change redis-py's own machinery does the rest:
idle connections are closed, busy ones are dropped when released (the pool
no longer owns a connection to another address). Asking from a thread keeps a
hung sentinel's timeout off the requests.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

from redis.exceptions import ConnectionError, ResponseError, TimeoutError
from redis.sentinel import SentinelConnectionPool

log = logging.getLogger("electro_isla.cache")

SENTINEL_ERRORS = (ConnectionError, ResponseError, TimeoutError, OSError)


class FollowingPool(SentinelConnectionPool):
    """The master pool, re-asking the sentinels every `check_every` seconds."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        self.check_every = float(kwargs.pop("check_every"))
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.switches = 0  # master changes this process saw (the live hub re-reads on one)
        self._known: tuple[str, int] | None = None  # the master as the last check found it
        self.follower_pid = 0
        self._follower_lock = threading.Lock()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self._ensure_follower()
        return super().get_connection(*args, **kwargs)

    def follow(self) -> bool:
        """Ask the sentinels now; True when the master moved since the last check.

        Compared with what this check last found, not with the pool's address: a
        connection opened meanwhile may have moved that already.
        """
        try:
            now = tuple(self.proxy.get_master_address())
        except SENTINEL_ERRORS:  # every sentinel out of reach: keep the master we know
            return False
        before = self._known if self._known is not None else self.master_address
        self._known = now
        if before is None or now == before:
            return False
        self.switches += 1
        log.warning("SENTINEL master moved %s:%s -> %s:%s", *before, *now)
        return True

    def _ensure_follower(self) -> None:
        """One follower thread per process (a forked worker starts its own)."""
        pid = os.getpid()
        if self.follower_pid == pid or self.check_every <= 0:
            return
        with self._follower_lock:
            if self.follower_pid == pid:
                return
            self.follower_pid = pid
            threading.Thread(
                target=self._follow_forever,
                args=(weakref.ref(self), pid),
                name="sentinel-follow",
                daemon=True,
            ).start()

    @staticmethod
    def _follow_forever(ref: weakref.ref[FollowingPool], pid: int) -> None:
        """The thread's loop. It holds the pool weakly: a discarded client ends it."""
        while True:
            pool = ref()
            if pool is None or pool.follower_pid != pid:
                return
            every = pool.check_every
            pool.follow()
            del pool
            time.sleep(every)
