"""What `db` is built from: the declarative base and the session class.

The session tells the cache about writes that no SQLAlchemy event reports:
`bulk_*_mappings` and `bulk_save_objects` fire neither mapper events nor
`do_orm_execute`. It only sends `bulk_written`; electro_isla.cache receives it
(a signal, so this module needs no import of the cache layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blinker import Namespace
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def driver_reason(error: BaseException) -> str:
    """A SQLAlchemy error's cause as the driver's first line (refused, no such database,
    no such table): no statement and no parameters, which may hold a password's hash."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else ""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Sent by Session with the tables a legacy bulk method wrote.
bulk_written = Namespace().signal("bulk-written")


class Session(FlaskSession):
    """Flask-SQLAlchemy's session; the legacy bulk methods note their tables for invalidation."""

    def _note(self, mappers: Iterable[Any]) -> None:
        tables = {t.name for m in mappers for t in sa_inspect(m).tables}
        bulk_written.send(self, tables=sorted(tables))

    def bulk_insert_mappings(self, mapper: Any, mappings: Any, *args: Any, **kw: Any) -> None:
        self._note([mapper])
        super().bulk_insert_mappings(mapper, mappings, *args, **kw)

    def bulk_update_mappings(self, mapper: Any, mappings: Any) -> None:
        self._note([mapper])
        super().bulk_update_mappings(mapper, mappings)

    def bulk_save_objects(self, objects: Iterable[Any], *args: Any, **kw: Any) -> None:
        objects = list(objects)
        self._note({type(o) for o in objects})
        super().bulk_save_objects(objects, *args, **kw)
