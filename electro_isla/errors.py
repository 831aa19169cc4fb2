"""One JSON envelope for every error: {code, status, message, errors?}."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError, UnsupportedMediaType

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JsonApi(Api):
    """flask-smorest's Api whose error payload always carries a human message."""

    def handle_http_exception(self, error: HTTPException):  # noqa: ANN201
        if error.code is None or error.code >= 500:
            # A failed request writes nothing, whatever it managed to flush.
            current_app.extensions["sqlalchemy"].session.rollback()
            original = getattr(error, "original_exception", None)
            if original is not None:
                log.error(
                    "unhandled %s on %s %s",
                    type(original).__name__,
                    request.method,
                    request.path,
                    exc_info=original,
                )
                error = InternalServerError()
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            payload["message"] = _message_for(error)
        return payload, code, headers


def _message_for(error: HTTPException) -> str:
    if error.code == 422:
        return "The request failed validation; see errors."
    if error.code == 400 and error.description and "JSON" in error.description:
        return "Malformed JSON body."
    return error.description or error.name


def require_json_body() -> None:
    """415 for a body that is not JSON, before any view runs."""
    if request.method in BODY_METHODS and request.content_length and not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")


def register_error_handlers(app: Flask) -> None:
    app.before_request(require_json_body)
