"""Extension instances, created unbound; `register_extensions` binds them."""

from collections.abc import Iterable
from typing import Any

from blinker import Namespace
from flask import Flask
from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase

from electro_isla.errors import JsonApi
from electro_isla.rendering import ConditionalGetPlugin

# Stable constraint names, so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Sent by Session with the tables a legacy bulk method wrote; electro_isla.cache
# receives it (a signal, so this module needs no import of the cache layer).
bulk_written = Namespace().signal("bulk-written")


class Session(FlaskSession):
    """Flask-SQLAlchemy's session; the legacy bulk methods note their tables for invalidation.

    `bulk_*_mappings` and `bulk_save_objects` fire neither mapper events nor
    `do_orm_execute`, so the cache would not hear of them otherwise.
    """

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


db = SQLAlchemy(model_class=Base, session_options={"class_": Session})
migrate = Migrate()
cache = Cache()
api = JsonApi()
jwt = JWTManager()


def register_extensions(app: Flask) -> None:
    import electro_isla.models  # noqa: F401  (every table known before Alembic looks)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", "migrations")))
    api.init_app(app, spec_kwargs={"extra_plugins": [ConditionalGetPlugin()]})
    from electro_isla.openapi import register_openapi_conventions

    register_openapi_conventions(api)
    jwt.init_app(app)
