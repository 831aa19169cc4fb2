"""Invalidation wired to the ORM: mapper events collect, COMMIT records and applies.

Mapper events fire while the transaction is still open, so they only note what
changed in `session.info`, per transaction: a savepoint's notes are its own.
Releasing a savepoint hands its notes to its parent; rolling it back forgets
only them. Just before the outermost COMMIT the notes become outbox rows in the
same transaction (generation bumps, and effects such as a logout's revocation
noted with `effect_after_commit`); once the transaction has ended, they are
applied to Redis and the rows deleted off the request path (outbox.py). Its ROLLBACK throws notes and rows away, so a failed
write leaves the cache alone.
An UPDATE notes the columns it changed (the attributes' history, plus columns
an `onupdate` default rewrites), so the registry can spare the names that do
not read them; an INSERT or DELETE notes a membership change.
ORM bulk `insert()/update()/delete()` are caught in `do_orm_execute`, the
legacy `bulk_*_mappings` by the session class (database.py); raw SQL cannot
be seen and must call `invalidate_after_commit` (whole tables) or
`invalidate_rows_after_commit` (rows) itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import (
    ColumnProperty,
    Mapper,
    ORMExecuteState,
    Session,
    SessionTransaction,
    object_session,
    scoped_session,
)

from electro_isla.cache.outbox import Effect
from electro_isla.cache.registry import EXTENSION_KEY, targets

PENDING = "electro_isla.cache.pending"
RECORDED = "electro_isla.cache.recorded"  # the effects (with their rows) of the COMMIT under way
COMMITTED = "electro_isla.cache.committed"  # what a COMMIT owes, applied when it has ended
WHOLE_TABLE = object()
ROW_ADDED_OR_REMOVED = "*"  # a change note meaning INSERT or DELETE (membership)
ROOT = "root"  # the outermost transaction's notes (also those made before it began)


def _key(transaction: SessionTransaction | None) -> SessionTransaction | str:
    return transaction if transaction is not None and transaction.nested else ROOT


def _innermost(session: Session) -> SessionTransaction | str:
    return _key(session.get_nested_transaction())


Notes = dict[str, dict[Any, set[str]]]  # {table: {row or WHOLE_TABLE: columns changed or "*"}}


def _notes(session: Session) -> dict[Any, Notes]:
    """{ROOT or a savepoint's transaction: {table: {row: what changed}}}."""
    return session.info.setdefault(PENDING, {})


def _pending(session: Session) -> Notes:
    return _notes(session).setdefault(_innermost(session), {})


def _note(session: Session, table: str, row: Any, changes: Iterable[str]) -> None:
    _pending(session).setdefault(table, {}).setdefault(row, set()).update(changes)


def pending_tables(session: Session) -> set[str]:
    """Tables this session wrote to and has not committed yet (any savepoint)."""
    return {
        table
        for touched in session.info.get(PENDING, {}).values()
        for table in touched
        if isinstance(table, str)
    }


def effect_after_commit(
    session: Session | scoped_session, kind: str, target: str, expires_at: float
) -> None:
    """Apply a `kind` effect on `target` (e.g. "revoke", a jti) once this session commits.

    Noted like a row change, so a savepoint's rollback forgets it, and recorded
    in the outbox with the COMMIT: it reaches Redis even if this process dies.
    """
    if isinstance(session, scoped_session):
        session = session()
    _note(session, ("effect", kind), target, {repr(float(expires_at))})


def invalidate_after_commit(session: Session | scoped_session, *tables: str) -> None:
    """Invalidate everything read from `tables` once this session commits."""
    if isinstance(session, scoped_session):
        session = session()
    for table in tables:
        _note(session, table, WHOLE_TABLE, ROW_ADDED_OR_REMOVED)


def invalidate_rows_after_commit(
    session: Session | scoped_session, table: str, rows: Iterable[Any], columns: Iterable[str]
) -> None:
    """Invalidate what a Core UPDATE of `columns` on `rows` of `table` feeds, once this
    session commits: such UPDATEs run on the session's connection, where no mapper
    event sees them. `columns` are all it writes, `onupdate` defaults included."""
    if isinstance(session, scoped_session):
        session = session()
    columns = set(columns)
    for row in rows:
        _note(session, table, row, columns)


def _row(mapper: Mapper, target: Any) -> Any:
    pk = mapper.primary_key_from_instance(target)
    return pk[0] if len(pk) == 1 else tuple(pk)


def _added_or_removed(mapper: Mapper, connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is None:
        return
    row = _row(mapper, target)
    for table in mapper.tables:
        _note(session, table.name, row, ROW_ADDED_OR_REMOVED)


def changed_columns(mapper: Mapper, target: Any) -> dict[str, set[str]]:
    """{table: columns} an UPDATE of `target` writes, read during the flush.

    The attributes' history says what the code set; a column with an `onupdate`
    default (`updated_at`) is rewritten by every UPDATE, so it counts as changed
    whenever anything else did. A value set to what it was is no change.
    """
    state = sa_inspect(target)
    changed: dict[str, set[str]] = {}
    for prop in mapper.column_attrs:
        if not isinstance(prop, ColumnProperty) or not state.attrs[prop.key].history.has_changes():
            continue
        for column in prop.columns:
            if getattr(column, "table", None) is not None:
                changed.setdefault(column.table.name, set()).add(column.name)
    for table in mapper.tables:
        if table.name in changed:
            changed[table.name].update(
                c.name for c in table.c if c.onupdate is not None or c.server_onupdate is not None
            )
    return changed


def _updated(mapper: Mapper, connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is None:
        return
    row = _row(mapper, target)
    for table, columns in changed_columns(mapper, target).items():
        _note(session, table, row, columns)


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


def invalidation_targets(pending: Notes) -> tuple[set[str], set[tuple[str, Any]]]:
    """(names, (name, row) pairs) the registry says these notes invalidate."""
    names: set[str] = set()
    rows: set[tuple[str, Any]] = set()
    for table, touched in pending.items():
        if not isinstance(table, str):
            continue  # an effect, not a table
        for row, changes in touched.items():
            if row is WHOLE_TABLE:
                found = targets(table, "bulk", None)
            elif ROW_ADDED_OR_REMOVED in changes:
                found = targets(table, "insert", row)
            else:
                found = targets(table, "update", row, frozenset(changes))
            names |= found[0]
            rows |= found[1]
    # A whole name's bump already covers its rows.
    return names, {(name, row) for name, row in rows if name not in names}


def _merge(into: Notes, notes: Notes) -> None:
    for table, touched in notes.items():
        mine = into.setdefault(table, {})
        for row, changes in touched.items():
            mine.setdefault(row, set()).update(changes)


def _effects(manager: Any, pending: Notes) -> list[Effect]:
    """What these notes owe the shared state: bumps, then the noted effects."""
    names, rows = invalidation_targets(pending)
    effects = manager.bump_effects(names, rows)
    for table, touched in pending.items():
        if isinstance(table, tuple):
            kind = table[1]
            effects += [Effect(kind, t, max(map(float, e))) for t, e in sorted(touched.items())]
    return effects


def _all_notes(session: Session) -> Notes:
    pending: Notes = {}
    for touched in session.info.get(PENDING, {}).values():
        _merge(pending, touched)
    return pending


def _manager() -> Any:
    return current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None


def _recording(session: Session) -> None:
    """Before the outermost COMMIT: insert what it owes the shared state, in its transaction."""
    if session.get_nested_transaction() is not None:
        return  # a savepoint's release: its notes move to its parent after it
    manager = _manager()
    if manager is None or not manager.outbox.durable:
        return
    session.flush()  # the commit's own flush comes after this hook: note its changes now
    pending = _all_notes(session)
    if not pending:
        return
    session.info[RECORDED] = manager.outbox.record(session.connection(), _effects(manager, pending))
    session.info.pop(PENDING, None)  # recorded: only what is noted from now on is left


def _committed(session: Session) -> None:
    """A savepoint's release hands its notes to its parent; the outermost COMMIT applies them."""
    nested = session.get_nested_transaction()
    notes = session.info.get(PENDING)
    if nested is not None:
        if notes:
            released = notes.pop(nested, None)
            if released:
                _merge(notes.setdefault(_key(nested.parent), {}), released)
        return
    recorded = session.info.pop(RECORDED, [])
    pending = _all_notes(session)
    session.info.pop(PENDING, None)
    manager = _manager()
    if manager is None or not (pending or recorded):
        return
    # Anything noted after the rows were written (an after_flush hook's writes)
    # is applied too, without a row.
    late = _effects(manager, pending) if pending else []
    # Applied once the transaction has ended and given its connection back:
    # deleting the rows takes one, and a writer must never hold two.
    session.info[COMMITTED] = (manager, recorded + late)


def _rolled_back(session: Session) -> None:
    """A savepoint's rollback forgets only its own notes; the outermost forgets them all."""
    nested = session.get_nested_transaction()
    if nested is None:
        session.info.pop(PENDING, None)
        session.info.pop(RECORDED, None)
    else:
        session.info.get(PENDING, {}).pop(nested, None)


def _ended(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended: apply what its COMMIT owes; else nothing it noted happened."""
    if transaction.parent is None and not transaction.nested:
        session.info.pop(RECORDED, None)
        committed = session.info.pop(COMMITTED, None)
        if committed is not None:
            manager, effects = committed
            manager.apply_committed(effects)
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
    event.listen(Mapper, "after_insert", _added_or_removed)
    event.listen(Mapper, "after_delete", _added_or_removed)
    event.listen(Mapper, "after_update", _updated)
    event.listen(Session, "do_orm_execute", _collect_bulk)
    event.listen(Session, "before_commit", _recording)
    event.listen(Session, "after_commit", _committed)
    event.listen(Session, "after_rollback", _rolled_back)
    event.listen(Session, "after_transaction_end", _ended)
    _installed = True
