"""The statistics a change moved, fetched side by side instead of in turn.

A poll that arrives between a bump and the hub's store of that statistic finds
no entry and waits for (or makes) the fetch: the hub's window is the sum of the
moved statistics' fetches when they run in turn, about the longest one when they
run at once. Each runs in its own thread, app context and database connection;
the cache's single-flight lock still makes it one fetch per change across
processes and hosts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from flask import Flask


class Fetcher:
    """Fetches several statistics at once on a small per-process thread pool."""

    def __init__(self, app: Flask, fetch: Callable[[str], Any], width: int) -> None:
        self.app = app
        self.fetch = fetch
        self.width = width
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def each(self, stats: list[str]) -> Iterator[tuple[str, Any]]:
        """(stat, what `fetch` gave) for each of `stats`, as each ends; an error raises.

        One statistic, or a width of 1, is fetched in the caller's thread and context.
        """
        if len(stats) <= 1 or self.width <= 1:
            for stat in stats:
                yield stat, self.fetch(stat)
            return
        pool = self._pool_here()
        futures = {pool.submit(self._in_context, stat): stat for stat in stats}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def _in_context(self, stat: str) -> Any:
        with self.app.app_context():  # its own session, removed at the end
            return self.fetch(stat)

    def _pool_here(self) -> ThreadPoolExecutor:
        """This process's pool (made after gunicorn's fork: threads do not survive one)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._pool = ThreadPoolExecutor(self.width, thread_name_prefix="live-fetch")
            return self._pool
