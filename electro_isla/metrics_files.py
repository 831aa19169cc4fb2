"""Prometheus files of workers that have exited, folded into one archive per kind.

prometheus-client's multiprocess mode keeps a counter and a histogram file per
worker pid and never removes them (a counter must not go backwards), and
`/metrics` reads every file at each scrape. Each worker gunicorn recycles
(GUNICORN_MAX_REQUESTS) left two more for good: a security probe counted 13
files after 600 requests with max_requests 100, and a busy site would gather
thousands a day, each read at every scrape.

When gunicorn's master reaps a worker (gunicorn.conf.py's child_exit), its
counter and histogram values are added into `counter_archive.db` and
`histogram_archive.db` and its files removed, under an exclusive lock that
`/metrics` takes shared: a scrape sees a dead worker's counts once, in its own
file or in the archive, never in both nor in neither (a counter that dipped would
read as a reset).
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict

LOCK_FILE = "metrics.lock"  # not a *.db: the collector reads only those
KINDS = ("counter", "histogram")  # the summed kinds (this app's gauges are live*)


@contextmanager
def files_locked(directory: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's lock: shared to read the files, exclusive to fold them. Read
    only and readable by all: a master and workers of different users share it."""
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def archive_worker(pid: int, directory: str) -> list[str]:
    """Drop the exited worker `pid`'s live gauges (prometheus-client's mark_process_dead),
    add its counters and histograms to the archives and remove its files; the names of
    files that could not be read (a worker killed while creating one leaves it empty).

    Such a file is renamed `*.unreadable`: the collector reads only `*.db`, and would fail
    every scrape on it; its counts are lost either way."""
    unreadable = []
    with files_locked(directory, exclusive=True):
        multiprocess.mark_process_dead(pid, directory)
        for kind in KINDS:
            dead = os.path.join(directory, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            try:
                values = list(MmapedDict.read_all_values_from_file(dead))
            except (OSError, RuntimeError, struct.error):
                os.replace(dead, f"{dead}.unreadable")
                unreadable.append(os.path.basename(dead))
                continue
            archive = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _pos in values:
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            os.unlink(dead)
    return unreadable
