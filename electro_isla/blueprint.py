"""flask-smorest's Blueprint with this API's request body parsing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    RequestEntityTooLarge,
    UnprocessableEntity,
    UnsupportedMediaType,
)

from electro_isla.envelope import NON_FIELD_ERRORS
from electro_isla.json import loads


class JsonBodyParser(FlaskParser):
    """webargs' parser reading bodies with electro_isla.json.loads.

    A body is read only by a view that takes one (`blp.arguments`), inside the view's
    authentication and permission decorators, as DRF reads `request.data` lazily in
    its handler: an unknown route is a 404, a wrong method a 405, an anonymous POST a
    401 and a cliente's a 403 whatever the body (a DRF client's probe saw 415/422
    answered first). JSON numbers reach Money as the Decimal the client wrote, and a
    5000-digit integer is a 400, not the ValueError of Python's int-string limit.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        """The body as webargs' json location: missing when empty; 415 when not JSON
        in UTF-8, 400 when it does not parse, 422 for text no column can store."""
        data = _body(req)
        if not data:
            return core.missing
        if not is_json_request(req):
            raise UnsupportedMediaType("Send the body as application/json.")
        # The body is read as UTF-8 whatever it says: a declared latin-1 body was a 400,
        # an ASCII one declared UTF-16 was accepted. The contract's JSON is UTF-8 only.
        if req.mimetype_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("Send the body as UTF-8 (charset=utf-8).")
        try:
            document = loads(data)
        except RecursionError as exc:  # absurdly deep nesting: the parser's recursion limit
            raise BadRequest("Malformed JSON body: nested too deeply.") from exc
        except ValueError as exc:  # JSONDecodeError, also for bytes that are not UTF-8
            abort(400, exc=exc, messages={"json": ["Invalid JSON body."]})
        # Lone surrogates ("\ud800") parse as JSON but the database driver cannot encode
        # them: a 422 per field here, not a 500 there.
        fields = (
            [k for k, v in document.items() if _has_lone_surrogate(k) or _has_lone_surrogate(v)]
            if isinstance(document, dict)
            else ([NON_FIELD_ERRORS] if _has_lone_surrogate(document) else [])
        )
        if fields:
            invalid = UnprocessableEntity()
            invalid.data = {
                "errors": {f: ["Not valid Unicode text (lone surrogate)."] for f in fields}
            }
            raise invalid
        return document


def _body(req: flask.Request) -> bytes:
    """The body's bytes, also of a chunked one (no Content-Length: the server decoded
    the chunks and lets the app read to the end), within MAX_CONTENT_LENGTH."""
    try:
        data = req.get_data(cache=True)
        # werkzeug reads a chunked body up to the limit and stops there without a word:
        # the first MiB of a larger body would be parsed and written as if it were all.
        # Only a chunked one: past a Content-Length, werkzeug's own server reads the
        # socket itself (PEP 3333 forbids it) and waited for a byte that never came.
        limit = req.max_content_length
        chunked = req.content_length is None
        if (
            chunked
            and limit is not None
            and len(data) >= limit
            and req.environ["wsgi.input"].read(1)
        ):
            raise RequestEntityTooLarge()
    except HTTPException:
        raise
    except Exception as exc:
        # What the server's reader raises on a body it cannot decode is the client's
        # error (gunicorn: InvalidChunkSize, ChunkMissingTerminator, a bad trailer; a
        # probe got 500s with a traceback for each).
        raise BadRequest("The request body could not be read: its encoding is malformed.") from exc
    return data


def _has_lone_surrogate(document: object) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


F = TypeVar("F", bound=Callable[..., Any])


def looked_up_first(lookup: Callable[..., Any]) -> Callable[[F], F]:
    """Decorate a view (under its permission decorator, over `blp.arguments`) so that
    `lookup(**url_values)` answers its 404 before the body is read: DRF's update runs
    get_object() before the serializer validates, so a PATCH of a producto that does
    not exist is a 404 whatever the body (a DRF client's probe got a 422)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            lookup(**kwargs)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class Blueprint(flask_smorest.Blueprint):
    """Every blueprint of the API: JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()
