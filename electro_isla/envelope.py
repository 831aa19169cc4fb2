"""The JSON envelope of every error: {code, status, message, errors?}.

`JsonApi` answers every HTTPException in it (flask-smorest's handler, plus a
human message and flat `errors`); electro_isla.errors routes the errors Flask
and the database raise to it. This module sits below extensions.py, which
builds `api = JsonApi()`, so it imports nothing of the package.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

NON_FIELD_ERRORS = "non_field_errors"


class ErrorSchema(ma.Schema):
    """The error envelope as documented in the OpenAPI document (never used to dump)."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "Reason phrase"})
    message = ma.fields.String(required=True, metadata={"description": "Human-readable text"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={
            "description": "Validation failures: one key per input (dotted path for nested"
            " ones, `non_field_errors` for the body as a whole), each a list of texts."
        },
    )


class JsonApi(Api):
    """flask-smorest's Api whose error payload carries a human message and flat `errors`."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):  # noqa: ANN201
        if error.code is None or error.code >= 500:
            # A failed request writes nothing, whatever it managed to flush.
            current_app.extensions["sqlalchemy"].session.rollback()
            # Flask has already logged the traceback (app.log_exception); the client
            # gets the generic 500 text, never the original exception's.
            if getattr(error, "original_exception", None) is not None:
                error = InternalServerError()
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            payload["message"] = _message_for(error)
        # API.md: `errors` only for validation failures (422), always there. A malformed
        # body (400: webargs names it under "json") says so in its message alone.
        if code == 422:
            payload["errors"] = _flat_errors_of(error) or {NON_FIELD_ERRORS: [payload["message"]]}
        else:
            payload.pop("errors", None)
        # What Werkzeug would have sent with its HTML page (Allow on a 405,
        # WWW-Authenticate...), which the parent handler drops.
        own = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return payload, code, {**own, **dict(headers or {})}


def flat_errors(errors: Any, *, by_location: bool = False) -> dict[str, list[str]]:
    """`errors` as API.md spells them: {input: [text, ...]}, nested inputs by dotted path.

    marshmallow nests per field and per list index ({"items": {0: {"cantidad": [...]}}})
    and names whole-object problems `_schema`; webargs adds the request location on
    top ({"json": ...}, `by_location`). Both become flat keys: `items.0.cantidad`,
    `items.1` (a whole item), `non_field_errors` (the body as a whole).
    """
    flat: dict[str, list[str]] = {}

    def walk(path: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                key = str(key)
                walk(path if key == "_schema" else f"{path}.{key}" if path else key, value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(path, item)
        elif node is not None:
            flat.setdefault(path or NON_FIELD_ERRORS, []).append(str(node))

    if by_location and isinstance(errors, dict):
        for per_location in errors.values():
            walk("", per_location)
    else:
        walk("", errors)
    return flat


def _flat_errors_of(error: HTTPException) -> dict[str, list[str]]:
    """The error's field messages, flat: `errors=` given to abort, or webargs' `messages`."""
    data = getattr(error, "data", None) or {}
    if data.get("errors"):
        return flat_errors(data["errors"])
    if data.get("messages"):
        return flat_errors(data["messages"], by_location=True)
    return {}


def _message_for(error: HTTPException) -> str:
    if error.code == 422:
        return "The request failed validation; see errors."
    data = getattr(error, "data", None) or {}
    if error.code == 400 and "json" in (data.get("messages") or data.get("errors") or {}):
        return "Malformed JSON body."
    return error.description or error.name
