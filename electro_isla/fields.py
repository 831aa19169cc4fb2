"""Marshmallow fields shared by every schema.

Both dump idempotently: a cached payload (already JSON) dumped again through
its schema comes out unchanged, so HIT and MISS answers are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from electro_isla.db_types import money

# NUMERIC(12, 2): ten digits before the point.
MAX_AMOUNT = Decimal("9999999999.99")
CENT_PLACES = Decimal("0.01")
# A money string is a number as JSON writes one (sign, ASCII digits, point,
# exponent): Decimal() alone would also take "١٢", "1_000", " 12 " and "NaN".
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class Money(fields.Field):
    """Exact money in, a JSON number with at most two decimals out."""

    default_error_messages = {
        "invalid": "Not a valid amount.",
        "places": "At most two decimals.",
        "too_large": "At most 9999999999.99.",
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Decimal | None:
        # A Decimal in cents: the JSON provider writes it digit for digit
        # (electro_isla.json.decimal_literal); a float would round past 2**53.
        if value is None:
            return None
        return money(Decimal(str(value)))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        # JSON numbers arrive as int or Decimal (electro_isla.json.loads keeps the
        # digits sent); float only from Python callers.
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise self.make_error("invalid")
        if isinstance(value, str) and not PLAIN_NUMBER.fullmatch(value):
            raise self.make_error("invalid")
        try:
            amount = value if isinstance(value, Decimal) else Decimal(str(value))
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if not amount.is_finite():
            raise self.make_error("invalid")
        # No arithmetic in the default context: abs() of 1e999999999 raises
        # decimal.Overflow; copy_abs() and comparisons are exact.
        if amount.copy_abs() > MAX_AMOUNT:
            raise self.make_error("too_large")
        _, digits, exponent = amount.as_tuple()
        # Beyond the cents, only zeros: 12.3400 is fine, 12.345 is not.
        if exponent < -2 and any(digits[max(0, len(digits) + exponent + 2) :]):
            raise self.make_error("places")
        return amount


class Timestamp(fields.DateTime):
    """ISO 8601 with offset; passes through strings that are already rendered."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def storable_text(value: str) -> None:
    """Refuse what PostgreSQL text cannot hold (NUL, and lone surrogates that
    JSON's \\udXXX escapes can smuggle in), here rather than as a 500 there."""
    if "\x00" in value:
        raise ValidationError("NUL characters are not allowed.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError("Not valid Unicode text.") from exc


class Texto(fields.String):
    """Text a person typed: surrounding whitespace is dropped before validation, as
    DRF's CharField does (trim_whitespace), so "  Calle 1 " is stored "Calle 1" and
    "   " meets the length and not-blank rules as "". Never for passwords."""

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        return super().deserialize(
            value.strip() if isinstance(value, str) else value, attr, data, **kwargs
        )


def text(max_length: int | None = None, min_length: int = 0, **kwargs: Any) -> Texto:
    """A typed text field with a length range that PostgreSQL can store."""
    return Texto(
        validate=[validate.Length(min=min_length, max=max_length), storable_text], **kwargs
    )


class StrictBoolean(fields.Boolean):
    """true/false only: 1, "yes" and "on" are not booleans in a JSON body.

    (A `truthy={True}` set would not do: 1 == True, so 1 is in it.)
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def strict_bool(**kwargs: Any) -> StrictBoolean:
    return StrictBoolean(**kwargs)


def strict_int(**kwargs: Any) -> fields.Integer:
    """An integer field that refuses 1.5 and "1" alike."""
    return fields.Integer(strict=True, **kwargs)


class PatchBody(Schema):
    """A PATCH body: each field optional. No body at all is `{}`, which changes nothing
    (200), as DRF's partial update of an empty `request.data`; a DRF client's probe
    got a 422 here."""


__all__ = [
    "MAX_AMOUNT",
    "Money",
    "PatchBody",
    "StrictBoolean",
    "Timestamp",
    "ValidationError",
    "storable_text",
    "strict_bool",
    "strict_int",
    "text",
]
