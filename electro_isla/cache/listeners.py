"""Invalidation wired to the ORM: mapper events collect, COMMIT applies.

Mapper events fire while the transaction is still open, so they only note what
changed in `session.info`, per transaction: a savepoint's notes are its own.
Releasing a savepoint hands its notes to its parent; rolling it back forgets
only them; the outermost COMMIT turns all notes into generation bumps and its
ROLLBACK throws them all away, so a failed write leaves the cache alone.
ORM bulk `insert()/update()/delete()` are caught in `do_orm_execute`, the
legacy `bulk_*_mappings` by the session class (extensions.py); raw SQL cannot
be seen and must call `invalidate_after_commit` (whole tables) or
`invalidate_rows_after_commit` (rows) itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import (
    Mapper,
    ORMExecuteState,
    Session,
    SessionTransaction,
    object_session,
    scoped_session,
)

from electro_isla.cache.registry import names_for_table, row_names_for_table

PENDING = "electro_isla.cache.pending"
WHOLE_TABLE = object()
ROOT = "root"  # the outermost transaction's notes (also those made before it began)


def _key(transaction: SessionTransaction | None) -> SessionTransaction | str:
    return transaction if transaction is not None and transaction.nested else ROOT


def _innermost(session: Session) -> SessionTransaction | str:
    return _key(session.get_nested_transaction())


def _notes(session: Session) -> dict[Any, dict[str, set[Any]]]:
    """{ROOT or a savepoint's transaction: {table: rows touched}}."""
    return session.info.setdefault(PENDING, {})


def _pending(session: Session) -> dict[str, set[Any]]:
    return _notes(session).setdefault(_innermost(session), {})


def pending_tables(session: Session) -> set[str]:
    """Tables this session wrote to and has not committed yet (any savepoint)."""
    return {table for touched in session.info.get(PENDING, {}).values() for table in touched}


def invalidate_after_commit(session: Session | scoped_session, *tables: str) -> None:
    """Invalidate everything read from `tables` once this session commits."""
    if isinstance(session, scoped_session):
        session = session()
    for table in tables:
        _pending(session).setdefault(table, set()).add(WHOLE_TABLE)


def invalidate_rows_after_commit(
    session: Session | scoped_session, table: str, rows: Iterable[Any]
) -> None:
    """Invalidate what `rows` of `table` feed (their row entries and the table's
    family-wide names) once this session commits: for Core UPDATEs run on the
    session's connection, which no mapper event sees."""
    if isinstance(session, scoped_session):
        session = session()
    _pending(session).setdefault(table, set()).update(rows)


def _collect(mapper: Mapper, connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is None:
        return
    pk = mapper.primary_key_from_instance(target)
    row = pk[0] if len(pk) == 1 else tuple(pk)
    for table in mapper.tables:
        _pending(session).setdefault(table.name, set()).add(row)


def _collect_bulk(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None:
        invalidate_after_commit(state.session, *(t.name for t in mapper.tables))
        return
    # Core insert()/update()/delete() on a Table run through the session.
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None):
        invalidate_after_commit(state.session, table.name)


def _targets(pending: dict[str, set[Any]]) -> tuple[set[str], set[tuple[str, Any]]]:
    names: set[str] = set()
    rows: set[tuple[str, Any]] = set()
    for table, touched in pending.items():
        names.update(entry.name for entry in names_for_table(table))
        for entry in row_names_for_table(table):
            if WHOLE_TABLE in touched:
                names.add(entry.name)
            rows.update((entry.name, row) for row in touched if row is not WHOLE_TABLE)
    return names, rows


def _merge(into: dict[str, set[Any]], notes: dict[str, set[Any]]) -> None:
    for table, touched in notes.items():
        into.setdefault(table, set()).update(touched)


def _committed(session: Session) -> None:
    """A savepoint's release hands its notes to its parent; the outermost COMMIT applies them."""
    nested = session.get_nested_transaction()
    notes = session.info.get(PENDING)
    if not notes:
        return
    if nested is not None:
        released = notes.pop(nested, None)
        if released:
            _merge(notes.setdefault(_key(nested.parent), {}), released)
        return
    pending: dict[str, set[Any]] = {}
    for touched in session.info.pop(PENDING).values():
        _merge(pending, touched)
    if not pending or not has_app_context():
        return
    manager = current_app.extensions.get("electro_isla.cache")
    if manager is not None:
        names, rows = _targets(pending)
        manager.invalidate(names=names, rows=rows)


def _rolled_back(session: Session) -> None:
    """A savepoint's rollback forgets only its own notes; the outermost forgets them all."""
    nested = session.get_nested_transaction()
    if nested is None:
        session.info.pop(PENDING, None)
    else:
        session.info.get(PENDING, {}).pop(nested, None)


def _ended(session: Session, transaction: SessionTransaction) -> None:
    """Closed without COMMIT or ROLLBACK events (session.close()): nothing it noted happened."""
    notes = session.info.get(PENDING)
    if not notes:
        return
    if transaction.nested:
        notes.pop(transaction, None)
    elif transaction.parent is None:
        session.info.pop(PENDING, None)


_installed = False


def install_listeners() -> None:
    """Listen on every mapper and session, once per process."""
    global _installed
    if _installed:
        return
    for mapper_event in ("after_insert", "after_update", "after_delete"):
        event.listen(Mapper, mapper_event, _collect)
    event.listen(Session, "do_orm_execute", _collect_bulk)
    event.listen(Session, "after_commit", _committed)
    event.listen(Session, "after_rollback", _rolled_back)
    event.listen(Session, "after_transaction_end", _ended)
    _installed = True
