"""flask-smorest's Blueprint with this API's request parsing and ETag comparison."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from flask import request
from flask_smorest.etag import _get_etag_ctx
from flask_smorest.exceptions import NotModified
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from electro_isla.json import loads


class JsonBodyParser(FlaskParser):
    """webargs' parser reading bodies with electro_isla.json.loads.

    The same parse as require_json_body's: a 5000-digit integer is webargs' 400
    (not the ValueError of Python's int-string limit, a 500), and JSON numbers
    reach Money as the Decimal the client wrote, not a rounded float.
    """

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        return loads(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    """Every blueprint of the API: JsonBodyParser and weak If-None-Match comparison."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def _check_not_modified(self, etag: str) -> None:
        """304 when If-None-Match names the tag, weak or strong (RFC 9110 13.1.2).

        smorest tests `etag in request.if_none_match`, a strong comparison, so a
        client (or proxy) sending back `W/"<tag>"` got the full 200 every time.
        The tag is kept for the 304's ETag header (errors._not_modified).
        """
        if request.method in self.METHODS_CHECKING_NOT_MODIFIED and (
            request.if_none_match.contains_weak(etag)
        ):
            _get_etag_ctx()["etag"] = etag
            raise NotModified
