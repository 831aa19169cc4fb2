"""JSON rendering: money as a JSON number, timestamps as ISO 8601 with offset."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider


def to_jsonable(value: Any) -> Any:
    # Decimals are already rounded to cents: float() only picks the JSON number form.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def loads(data: str | bytes) -> Any:
    """A request body or stored entry: JSON numbers with a point or exponent as Decimal.

    Decimal keeps the text the client sent (1.0000000000000000000001 stays that,
    not the float 1.0), so Money can refuse what it cannot hold exactly. Every
    failure is a JSONDecodeError, which webargs answers with its 400, including
    the ValueError of an integer longer than Python's int-string limit (4300 digits).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(f"Not UTF-8: {exc.reason}", "?", exc.start) from exc
    try:
        return json.loads(data, parse_float=Decimal)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int("1" * 5000): Exceeds the limit (4300 digits)
        raise json.JSONDecodeError("A number has too many digits", data, 0) from exc


def dumps(value: Any) -> str:
    return json.dumps(value, default=to_jsonable, separators=(",", ":"), ensure_ascii=False)


class JSONProvider(DefaultJSONProvider):
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        return to_jsonable(o)


def register_json_provider(app: Flask) -> None:
    app.json = JSONProvider(app)
