"""A statistic's figures read from one snapshot.

A fetch is several statements (reporte: orders per estado, the month's days, the
totals); in READ COMMITTED each sees what was committed when it began, so a commit
between two of them gave a body no committed state ever had. A probe saw reporte with
`pedidos_pendientes` from before a confirmation and `ingresos_totales` after it,
cached, and streamed to dashboards. On PostgreSQL the fetch runs in one REPEATABLE
READ transaction: every statement sees the first one's snapshot. (SQLite runs one
writer at a time; its reads are not wrapped.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app

from electro_isla.extensions import db

T = TypeVar("T")


def una_instantanea(fetch: Callable[[], T]) -> T:
    """`fetch()` with every statement in one snapshot (PostgreSQL).

    A session that has begun its transaction cannot change its isolation: the fetch
    then gets a session (and a connection) of its own, in an app context of its own."""
    if db.session.get_bind().dialect.name != "postgresql":
        return fetch()
    if not db.session().in_transaction():
        return repeatable_read(fetch)
    with current_app.app_context():
        return repeatable_read(fetch)


def repeatable_read(fetch: Callable[[], T]) -> T:
    db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    try:
        return fetch()
    finally:
        db.session.rollback()  # read only: ends the snapshot, the connection goes back
