"""A fresh database with the migrated schema, on a private PostgreSQL server."""

from __future__ import annotations

import psycopg

from electro_isla_testing.servers import PostgresServer


def libpq_url(sqlalchemy_url: str) -> str:
    """The same database as a libpq URL (for psycopg without SQLAlchemy)."""
    return sqlalchemy_url.replace("postgresql+psycopg", "postgresql")


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database on `server` with the migrations applied; returns its SQLAlchemy URL."""
    # Imported on call: a benchmark picks which tree's electro_isla comes first on sys.path.
    import flask_migrate

    from electro_isla import create_app
    from electro_isla.config import TestConfig
    from electro_isla.extensions import db

    with psycopg.connect(libpq_url(server.url("postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None})
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])
        db.engine.dispose()
    return url
