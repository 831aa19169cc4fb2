"""What the OpenAPI document says about the project's own fields, so it matches behaviour.

apispec knows marshmallow's built-in fields; these teach it the rest: Money is a
JSON number with two decimals at most, text refuses NUL, and a list's query
parameters may be sent empty (meaning "not given"). The fuzz suite holds the
document to the API's answers.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Api
from marshmallow import fields, validate

from electro_isla.fields import CENT_PLACES, MAX_AMOUNT, Money, storable_text
from electro_isla.pagination import QueryArgsSchema


def money_properties(self: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
    """An input amount's bounds and cents; an exclusive minimum (precio > 0) is said as such.

    Answers (fields without validators) stay a plain number: a sum in the
    statistics is not bounded by one column.
    """
    if not isinstance(field, Money) or not field.validators:
        return {}
    props: dict[str, Any] = {"multipleOf": float(CENT_PLACES)}
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    if any(r.min is not None and not r.min_inclusive for r in ranges):
        props["exclusiveMinimum"] = True
    if not any(r.min is not None for r in ranges):
        props["minimum"] = -float(MAX_AMOUNT)
    if not any(r.max is not None for r in ranges):
        props["maximum"] = float(MAX_AMOUNT)
    return props


def storable_text_pattern(self: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
    """Text PostgreSQL can store has no NUL character."""
    if storable_text in field.validators and "pattern" not in field.metadata:
        return {"pattern": "^[^\\u0000]*$"}
    return {}


def empty_means_absent(self: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
    """A list's query parameters: `?estado=` is the same as leaving it out."""
    if isinstance(field.parent, QueryArgsSchema):
        return {"allowEmptyValue": True}
    return {}


def register_openapi_conventions(api: Api) -> None:
    api.register_field(Money, "number", None)
    converter = api.ma_plugin.converter
    converter.add_attribute_function(money_properties)
    converter.add_attribute_function(storable_text_pattern)
    converter.add_parameter_attribute_function(empty_means_absent)
