"""flask-smorest's Blueprint with this API's request body parsing."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from electro_isla.json import loads


class JsonBodyParser(FlaskParser):
    """webargs' parser reading bodies with electro_isla.json.loads.

    The same parse as require_json_body's: a 5000-digit integer is webargs' 400
    (not the ValueError of Python's int-string limit, a 500), and JSON numbers
    reach Money as the Decimal the client wrote, not a rounded float.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        """The body as webargs' json location: missing when empty or not JSON, 400 when bad."""
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return loads(data)
        except ValueError as exc:  # JSONDecodeError, also for bytes that are not UTF-8
            abort(400, exc=exc, messages={"json": ["Invalid JSON body."]})


class Blueprint(flask_smorest.Blueprint):
    """Every blueprint of the API: JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()
