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
hung sentinel's timeout off the requests. The lookups of one pool are made one
at a time: redis-py's reorders the shared sentinel list with an index read
before its network call, and two at once can copy one sentinel over another.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

from redis.sentinel import SentinelConnectionPool, SentinelConnectionPoolProxy

log = logging.getLogger("electro_isla.cache")


class SerialProxy(SentinelConnectionPoolProxy):
    """redis-py's master lookup, one at a time, counting the moves it makes."""

    def __init__(self, **kwargs: Any) -> None:
        self._lookup = threading.Lock()
        self.switches = 0  # master changes this process followed (the live hub re-reads)
        super().__init__(**kwargs)

    def get_master_address(self) -> Any:
        with self._lookup:
            before = self.master_address
            now = super().get_master_address()
            if before is not None and tuple(now) != tuple(before):
                self.switches += 1
                log.warning("SENTINEL master moved %s:%s -> %s:%s", *before, *now)
            return now


class FollowingPool(SentinelConnectionPool):
    """The master pool, re-asking the sentinels every `check_every` seconds."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        self.check_every = float(kwargs.pop("check_every"))
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.proxy = SerialProxy(
            connection_pool=self,
            is_master=self.is_master,
            check_connection=self.check_connection,
            service_name=service_name,
            sentinel_manager=sentinel_manager,
        )
        self.connection_kwargs["connection_pool"] = self.proxy
        self.follower_pid = 0  # the process whose thread follows the master
        self._follower_lock = threading.Lock()

    @property
    def switches(self) -> int:
        return self.proxy.switches

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self._ensure_follower()
        return super().get_connection(*args, **kwargs)

    def follow(self) -> bool:
        """Ask the sentinels now; True when the master moved (idle connections closed).

        Never raises: whatever the lookup meets (no sentinel answers, a garbled
        reply), the pool keeps the master it knows and the next check asks again.
        """
        before = self.switches
        try:
            self.proxy.get_master_address()
        except Exception as exc:  # noqa: BLE001  a follower that died would never come back
            log.debug("SENTINEL check failed: %s", type(exc).__name__)
            return False
        return self.switches != before

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
        """The thread's loop. It holds the pool weakly: it ends once the pool is collected."""
        while True:
            pool = ref()
            if pool is None or pool.follower_pid != pid:
                return
            every = pool.check_every
            pool.follow()
            del pool
            time.sleep(every)
