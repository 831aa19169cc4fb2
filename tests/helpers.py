"""Small helpers shared by the domain tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask
from sqlalchemy import text

from electro_isla.extensions import db as _db
from electro_isla_testing.factories import UsuarioFactory, auth_headers

T = TypeVar("T")

# Expected status per caller, in this order, for staff-only and admin-only endpoints
# (None: the endpoint's own success status).
CALLERS = ("anonymous", "cliente", "mensajero", "trabajador", "admin")
STAFF_MATRIX = dict(zip(CALLERS, (401, 403, 403, None, None), strict=True))
ADMIN_MATRIX = dict(zip(CALLERS, (401, 403, 403, 403, None), strict=True))


def user_with_role(app: Flask, rol: str, **fields) -> tuple[int, dict[str, str]]:
    """Create a usuario with `rol`; return its id and bearer headers (the factory's
    password hash is cheap)."""
    with app.app_context():
        usuario = UsuarioFactory(rol=rol, **fields)
        uid = usuario.id
    return uid, auth_headers(app, uid)


def headers_for(app: Flask, caller: str) -> dict[str, str]:
    """Bearer headers for a new usuario of role `caller`; none for "anonymous"."""
    return {} if caller == "anonymous" else user_with_role(app, caller)[1]


ROLES = ("admin", "trabajador", "mensajero", "cliente")


def writes_settled(app: Flask) -> None:
    """Wait until earlier writes' outbox rows are deleted: that runs on a thread of its
    own, so a test counting SQL statements would otherwise count it too."""
    manager = app.extensions.get("electro_isla.cache")
    if manager is not None:
        manager.outbox.deleter.settle()


def error_keys(response) -> set[str]:  # noqa: ANN001
    """The keys of an answer's `errors`, once checked flat (API.md, Conventions).

    Each key names one input (no `json`/`query` location level), each value is a
    non-empty list of strings.
    """
    errors = response.get_json()["errors"]
    assert isinstance(errors, dict) and errors, errors
    for key, texts in errors.items():
        assert key not in ("json", "query"), errors
        assert isinstance(texts, list) and texts, (key, texts)
        assert all(isinstance(text, str) for text in texts), (key, texts)
    return set(errors)


def while_held(app: Flask, statement: str, params: dict, request: Callable[[], T]) -> T:
    """`request()` while `statement` is another connection's open transaction, committed
    once a session of this database waits on a lock (or after 5 s, when the code under
    test never waits): a race made to happen, whichever way the code under test orders it."""
    with app.app_context():
        engine = _db.engine
    conn = engine.connect()
    held = conn.begin()
    conn.execute(text(statement), params)

    def commit_once_waited_on() -> None:
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not watcher.execute(waiting).scalar():
                time.sleep(0.02)
        held.commit()

    thread = threading.Thread(target=commit_once_waited_on)
    thread.start()
    try:
        return request()
    finally:
        thread.join()
        conn.close()
