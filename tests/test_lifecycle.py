"""A dropped app is freed: nothing of the process keeps it, its engine or its cache.

Production builds one app per worker, but a test session builds hundreds: each one
pinned by a signal receiver or a background thread kept 1.7 M objects alive by the
middle of the suite, and the collector's full passes over them paused timed requests
for over a second (a CI failure: a paused-Redis read measured 1.4 s).
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable

from flask import Flask

from electro_isla import create_app
from electro_isla.cache.outbox import RowDeleter
from electro_isla.config import TestConfig
from tests.cache.support import add_producto, manager_of
from tests.conftest import unique_prefix


def test_a_dropped_app_is_freed_and_its_deleter_thread_ends(
    make_app: Callable[..., Flask], _schema: str, redis_url: str, tmp_path
) -> None:
    before = set(threading.enumerate())
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": _schema,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": unique_prefix(),
            "LOG_DIR": str(tmp_path / "logs"),
        },
    )
    add_producto(app)  # commits: its bumps are published, its outbox rows deleted off-thread
    assert manager_of(app).outbox.deleter.settle()
    deleters = [t for t in set(threading.enumerate()) - before if t.name == "outbox-deleter"]
    assert len(deleters) == 1
    freed = weakref.ref(app)

    make_app()  # the next app takes over Flask-Caching's module-level object (and truncates)
    del app
    gc.collect()

    assert freed() is None, [type(r).__name__ for r in gc.get_referrers(freed())]
    deleters[0].join(RowDeleter.IDLE_LOOK + 2.0)
    assert not deleters[0].is_alive()
