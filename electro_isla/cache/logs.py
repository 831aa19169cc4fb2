"""cache.log: one grep-friendly line per cache event (written by stats.Counting, the sink)."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from flask import Flask

log = logging.getLogger("electro_isla.cache")


class CacheLogHandler(RotatingFileHandler):
    """cache.log, rotated by size checked every CHECK_EVERY lines.

    The stock check stats the path twice, formats each record a second time and
    seeks on every line: most of a HIT's logging cost. Checking the file's real
    size (fstat: other workers write to it too) now and then is enough.
    """

    CHECK_EVERY = 256
    _since_check = 0

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802
        if self.stream is None:  # nothing written yet (delay=True): emit() opens it
            return False
        self._since_check += 1
        if self._since_check < self.CHECK_EVERY:
            return False
        self._since_check = 0
        self.stream.flush()
        return os.fstat(self.stream.fileno()).st_size >= self.maxBytes


def _handler_for(app: Flask) -> None:
    """One cache.log per process: the last app created decides where (tests build many)."""
    log_dir = Path(app.config["LOG_DIR"])
    log_dir.mkdir(parents=True, exist_ok=True)
    path = str((log_dir / "cache.log").resolve())
    if any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        return
    for old in [h for h in log.handlers if getattr(h, "electro_isla_cache", False)]:
        log.removeHandler(old)
        old.close()
    handler = CacheLogHandler(path, maxBytes=10 * 1024 * 1024, backupCount=5, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d %(message)s"))
    handler.electro_isla_cache = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def subscribe(app: Flask) -> None:
    """Where cache.log goes; its lines are written by the counting sink (stats.py)."""
    _handler_for(app)
