"""What a setting's value may be, checked once at start: a value outside it stops the
start with a message naming the variable (README, Configuration).

Each check here replaces a failure found later, where it named nothing: a REDIS_URL
without its scheme started the app, then every request but /healthz was a 500 (and
/healthz kept an orchestrator from restarting it); `DATABASE_URL=postgres://…`, the
form Heroku and many tutorials write, was a NoSuchModuleError; LOG_LEVEL=LOUD a bare
"Unknown level". URLs are never echoed: they may hold a password.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.connection import parse_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Misconfigured(ValueError):
    """A setting whose value cannot work. wsgi.py says it in one line and stops; any other
    error while the app is built keeps its traceback (a bug is not a setting)."""


def check_values(config: dict[str, Any]) -> None:
    """Raise Misconfigured naming the first variable whose value cannot work."""
    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["SQLALCHEMY_DATABASE_URI"])
    mode = str(config.get("REDIS_MODE") or "standalone").lower()
    if config.get("REDIS_URL") and mode != "sentinel":  # sentinel mode does not read it
        redis_urls(config["REDIS_URL"], several=mode == "cluster")
    if str(config.get("LOG_FORMAT", "text")).lower() not in LOG_FORMATS:
        raise Misconfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    # The names logging itself knows (WARN and FATAL too): what setLevel takes.
    if not isinstance(logging.getLevelName(str(config.get("LOG_LEVEL", "INFO")).upper()), int):
        raise Misconfigured(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")


def redis_urls(raw: str, several: bool) -> None:
    """REDIS_URL: one URL, or in cluster mode startup nodes `redis://h:p,h:p` or
    `h:p,h:p` (shared_store/clients.py); each must be one redis-py can open."""
    items = [part.strip() for part in raw.split(",")] if several else [raw]
    for item in items:
        try:
            parse_url(item if not several or "://" in item else f"redis://{item}")
        except ValueError as exc:
            raise Misconfigured(
                f"REDIS_URL is not a Redis URL (redis://host:port/db, rediss://…, "
                f"unix:///path{'; in cluster mode h:p,h:p too' if several else ''}): {exc}"
            ) from None


def database_url(uri: str) -> str:
    """The SQLAlchemy URL of DATABASE_URL; `postgres://` is read as `postgresql://`, as
    dj-database-url reads it for Django."""
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri.removeprefix("postgres://")
    try:
        make_url(uri).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        kind = type(exc).__name__
        raise Misconfigured(
            f"DATABASE_URL is not a database URL this app can use "
            f"(postgresql://user@host:5432/name or sqlite:///path): {kind}"
        ) from None
    return uri
