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


def dumps(value: Any) -> str:
    return json.dumps(value, default=to_jsonable, separators=(",", ":"), ensure_ascii=False)


class JSONProvider(DefaultJSONProvider):
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        return to_jsonable(o)


def register_json_provider(app: Flask) -> None:
    app.json = JSONProvider(app)
