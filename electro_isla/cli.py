"""What a command that reads the database says when it cannot: a sentence, not a traceback.

A DBA's probe ran `estadisticas-check`, `seed-demo` and `create-user` against a database
not migrated yet: each ended in a raw SQLAlchemy traceback (create-user's printed the
new password's hash among its parameters). Only the driver's first line is shown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from electro_isla.database import driver_reason

F = TypeVar("F", bound=Callable[..., Any])


def _no_table(reason: str) -> bool:
    """The drivers' words for a table that is not there (PostgreSQL, SQLite); not for a
    database that is not there (`database "x" does not exist`: unavailable)."""
    return (
        reason.startswith("relation ") and "does not exist" in reason or ("no such table" in reason)
    )


def database_command(command: F) -> F:
    """Put under the click decorators of a command that reads or writes the database."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ProgrammingError, OperationalError) as exc:
            reason = driver_reason(exc) or type(exc).__name__
            if _no_table(reason):
                raise click.ClickException(
                    f"the database has no schema yet ({reason}): run `flask db upgrade` first"
                ) from None
            if isinstance(exc, OperationalError):
                raise click.ClickException(f"database unavailable: {reason}") from None
            raise

    return wrapper  # type: ignore[return-value]
