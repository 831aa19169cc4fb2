"""JSON in and out: money as an exact JSON number, timestamps as ISO 8601 with offset."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def decimal_literal(value: Decimal) -> str:
    """The JSON number token of `value`, digit for digit: never float, never exponent.

    float() rounded 21474836493028472805.28 to 2.1474836493028475e+19; a JSON
    number may have any number of digits, so the Decimal's own text is the answer.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    return format(value, "f")


def encode(value: Any, default: Callable[[Any], Any] = to_jsonable, **kwargs: Any) -> str:
    """json.dumps, with each Decimal written as its exact number literal.

    The C encoder cannot be taught a new number type, and its float path rounds.
    So each Decimal is first written as a string holding a random per-call token
    and its index, then each such string is replaced by the literal: no client
    text can contain a token it never saw, and the encoder keeps its speed.
    """
    found: list[Decimal] = []
    token = ""

    def default_or_marker(o: Any) -> Any:
        nonlocal token
        if not isinstance(o, Decimal):
            return default(o)
        token = token or secrets.token_hex(16)
        found.append(o)
        return f"{token}{len(found) - 1}"

    text = json.dumps(value, default=default_or_marker, **kwargs)
    if not found:
        return text
    return re.sub(f'"{token}([0-9]+)"', lambda m: decimal_literal(found[int(m[1])]), text)


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
        return json.loads(data, parse_float=Decimal, parse_constant=_not_json)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int("1" * 5000): Exceeds the limit (4300 digits)
        raise json.JSONDecodeError("A number has too many digits", data, 0) from exc


def _not_json(constant: str) -> Any:
    """NaN, Infinity and -Infinity: Python's extension, not JSON (RFC 8259 §6), as DRF
    refuses them: a body carrying one is malformed, whichever key holds it."""
    raise json.JSONDecodeError(f"{constant} is not a JSON value", constant, 0)


def dumps(value: Any) -> str:
    """Compact JSON for cached values (read back with `loads`, Decimals intact; a float
    NaN or infinity, which `loads` would refuse, is refused here)."""
    return encode(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class JSONProvider(DefaultJSONProvider):
    """Flask's provider (responses, smorest's ETag hashing) with exact Decimals."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        return to_jsonable(o)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return encode(obj, **kwargs)


def register_json_provider(app: Flask) -> None:
    app.json = JSONProvider(app)
