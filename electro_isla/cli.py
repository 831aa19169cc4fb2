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
from flask_migrate.cli import db as migration_commands
from sqlalchemy.exc import OperationalError, ProgrammingError

from electro_isla.database import driver_reason

F = TypeVar("F", bound=Callable[..., Any])
GUARDED = "electro_isla_guarded"  # set on a Flask-Migrate callback once wrapped


def _no_table(reason: str) -> bool:
    """The drivers' words for a table that is not there (PostgreSQL, SQLite); not for a
    database that is not there (`database "x" does not exist`: unavailable)."""
    return (
        reason.startswith("relation ") and "does not exist" in reason or ("no such table" in reason)
    )


def database_message(exc: BaseException) -> str | None:
    """The sentence for a database that is unreachable or has no schema; None for any
    other error (a bug: its traceback is wanted)."""
    if not isinstance(exc, ProgrammingError | OperationalError):
        return None
    reason = driver_reason(exc) or type(exc).__name__
    if _no_table(reason):
        return f"the database has no schema yet ({reason}): run `flask db upgrade` first"
    if isinstance(exc, OperationalError):
        return f"database unavailable: {reason}"
    return None


def database_command(command: F, *, connecting_only: bool = False) -> F:
    """Put under the click decorators of a command that reads or writes the database.
    `connecting_only`: only a database it cannot connect to gets the sentence."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ProgrammingError, OperationalError) as exc:
            message = database_message(exc)
            if message is None or (connecting_only and exc.statement is not None):
                raise
            raise click.ClickException(message) from None

    return wrapper  # type: ignore[return-value]


def guard_migration_commands() -> None:
    """Flask-Migrate's `flask db ...` say a database they cannot connect to as ours do: an
    operator's `flask db upgrade` against an unreachable one printed two tracebacks (151
    lines). A migration's own failure (a lock timeout, a table it expected) keeps its
    traceback: it is no "run flask db upgrade first" (a reviewer). Idempotent."""
    for command in migration_commands.commands.values():
        callback = command.callback
        if callback is not None and not getattr(callback, GUARDED, False):
            command.callback = database_command(callback, connecting_only=True)
            setattr(command.callback, GUARDED, True)
