"""What a setting's value may be, checked once at start: a value outside it stops the
start with a message naming the variable (README, Configuration).

Each check here replaces a failure found later, where it named nothing: a REDIS_URL
without its scheme started the app, then every request but /healthz was a 500 (and
/healthz kept an orchestrator from restarting it); `DATABASE_URL=postgres://…`, the
form Heroku and many tutorials write, was a NoSuchModuleError; LOG_LEVEL=LOUD a bare
"Unknown level". URLs are never echoed: they may hold a password.
"""

from __future__ import annotations

from typing import Any

from redis.connection import parse_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_values(config: dict[str, Any]) -> None:
    """Raise ValueError naming the first variable whose value cannot work."""
    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["SQLALCHEMY_DATABASE_URI"])
    if config.get("REDIS_URL"):
        try:
            parse_url(config["REDIS_URL"])
        except ValueError as exc:
            raise ValueError(
                f"REDIS_URL is not a Redis URL (redis://host:port/db, rediss://…, "
                f"unix:///path): {exc}"
            ) from None
    if not float(config["REDIS_SOCKET_TIMEOUT"]) > 0:  # 0: every command timed out
        raise ValueError("REDIS_SOCKET_TIMEOUT must be a positive number of seconds")
    if str(config.get("LOG_FORMAT", "text")).lower() not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    if str(config.get("LOG_LEVEL", "INFO")).upper() not in LOG_LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    workers = config.get("WEB_CONCURRENCY")
    if workers is not None and int(workers) < 1:  # 0: a gunicorn with no worker
        raise ValueError("WEB_CONCURRENCY must be at least 1")


def database_url(uri: str) -> str:
    """The SQLAlchemy URL of DATABASE_URL; `postgres://` is read as `postgresql://`, as
    dj-database-url reads it for Django."""
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri.removeprefix("postgres://")
    try:
        make_url(uri).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        kind = type(exc).__name__
        raise ValueError(
            f"DATABASE_URL is not a database URL this app can use "
            f"(postgresql://user@host:5432/name or sqlite:///path): {kind}"
        ) from None
    return uri
