"""Every error reaches the JSON envelope (electro_isla/envelope.py), uncaught ones included.

After a view: a routing redirect's body (the request body is checked where a view
reads it, electro_isla/blueprint.py). Around it: a dead database is a 503, a value the
database refuses a 422, and the session is released even on a dead connection.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, current_app, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import (
    ServiceUnavailable,
    UnprocessableEntity,
)
from werkzeug.routing import IntegerConverter, RequestRedirect

from electro_isla.database import driver_reason
from electro_isla.envelope import NON_FIELD_ERRORS
from electro_isla.extensions import api, db

log = logging.getLogger(__name__)

# Connection refused/lost, server shutting down, pool exhausted: the request may be
# retried once the database is back, so it is a 503, not a 500.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
DB_RETRY_AFTER_SECONDS = 5


def database_unavailable(error: Exception):  # noqa: ANN201
    """503 envelope when the database cannot be reached; the next request reconnects."""
    # The driver's first line says which: refused, no such database, too many clients.
    log.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        type(error).__name__,
        driver_reason(error)[:300] or "-",
    )
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001  a dead connection may refuse even the rollback
        log.debug("rollback after database error failed", exc_info=True)
    unavailable = ServiceUnavailable("The database is unavailable; try again shortly.")
    payload, code, headers = api.handle_http_exception(unavailable)
    headers = {**headers, "Retry-After": str(DB_RETRY_AFTER_SECONDS)}
    return payload, code, headers


def refused_by_database(error: sa_exc.DataError):  # noqa: ANN201
    """422 for a value PostgreSQL refuses (a NUL character, a number out of range).

    A safety net: schemas should reject such values field by field; when one does
    not, the client still gets a 4xx and nothing is written, never a 500.
    """
    log.warning(
        "database refused a value on %s %s: %s",
        request.method,
        request.path,
        str(getattr(error, "orig", error)).splitlines()[0],
    )
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001
        log.debug("rollback after DataError failed", exc_info=True)
    refused = UnprocessableEntity()
    message = "A value cannot be stored (NUL character or number out of range)."
    refused.data = {"message": message, "errors": {NON_FIELD_ERRORS: [message]}}
    return api.handle_http_exception(refused)


def redirect_envelope(response: Response) -> Response:
    """A 308 to the canonical path (trailing slash) answers the JSON envelope, not HTML.

    Flask hands routing redirects back as Werkzeug's own response, past every error
    handler; status and Location stay as they are.
    """
    redirect = request.routing_exception
    if isinstance(redirect, RequestRedirect) and response.status_code == redirect.code:
        body = {
            "code": redirect.code,
            "status": HTTPStatus(redirect.code).phrase,
            "message": f"This resource lives at {redirect.new_url}.",
        }
        response.set_data(current_app.json.dumps(body))
        response.content_type = "application/json"
    return response


def release_session(_exc: BaseException | None) -> None:
    """End the request's session; a connection the server killed must not turn an answer into a 500.

    Registered after Flask-SQLAlchemy's own teardown, so it runs first; the ROLLBACK
    on close fails when PostgreSQL shut down since the last query.
    """
    try:
        db.session.remove()
    except DATABASE_UNAVAILABLE as error:
        log.warning("closing a session on a dead connection: %s", type(error).__name__)
        try:
            db.session.close()
        except Exception:  # noqa: BLE001  the connection is already invalidated
            log.debug("second close failed", exc_info=True)
        db.session.registry.clear()


MAX_DB_ID = 2**31 - 1


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` bounded by the INTEGER primary keys: a larger id is a 404, not a DataError.

    Found by the fuzzer: PATCH /api/admin/users/2147483648/ reached PostgreSQL and
    failed with "integer out of range" (500). The bound also lands in the OpenAPI document.
    ASCII digits only, as Django's `<int:pk>`: werkzeug's digit class also took `/１/` as 1.
    """

    regex = "[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_DB_ID, signed=False) -> None:  # noqa: A002, ANN001
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_error_handlers(app: Flask) -> None:
    # Before any blueprint: rules pick their converters when they are added.
    app.url_map.converters["int"] = DatabaseIdConverter
    app.after_request(redirect_envelope)
    for exc_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(exc_class, database_unavailable)
    app.register_error_handler(sa_exc.DataError, refused_by_database)
    app.teardown_appcontext(release_session)
