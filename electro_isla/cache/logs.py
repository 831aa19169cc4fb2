"""cache.log: one grep-friendly line per cache event, fed by the blinker signals."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from flask import Flask

from electro_isla.cache import signals

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
        if self.stream is None:
            self.stream = self._open()
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


def _on_hit(_sender: Any, name: str, key: str, **_: Any) -> None:
    log.info("HIT %s", key)


def _on_miss(_sender: Any, name: str, key: str, **_: Any) -> None:
    log.info("MISS %s", key)


def _on_invalidate(_sender: Any, name: str, key: str, **_: Any) -> None:
    log.info("INVALIDATE %s", key)


def _on_bypass(_sender: Any, name: str, key: str, reason: str, **_: Any) -> None:
    log.info("BYPASS %s (%s)", key, reason)


def subscribe(app: Flask) -> None:
    _handler_for(app)
    signals.cache_hit.connect(_on_hit, weak=False)
    signals.cache_miss.connect(_on_miss, weak=False)
    signals.cache_invalidate.connect(_on_invalidate, weak=False)
    signals.cache_bypass.connect(_on_bypass, weak=False)
