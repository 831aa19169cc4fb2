"""flask-smorest's Blueprint with this API's request parsing and ETag comparison."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
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
    """Every blueprint of the API: bodies parsed by JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()
