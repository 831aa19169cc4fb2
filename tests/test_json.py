"""electro_isla.json: Decimals written digit for digit, read back as Decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask import json as flask_json

from electro_isla.json import dumps, encode, loads

BIG = Decimal("21474836493028472805.28")  # float() made it 2.1474836493028475e+19


def test_decimals_are_exact_number_literals_anywhere_in_the_document():
    document = {"a": BIG, "b": [Decimal("0.10"), {"c": Decimal("-5.00")}], "d": 1.5}
    assert dumps(document) == ('{"a":21474836493028472805.28,"b":[0.10,{"c":-5.00}],"d":1.5}')
    assert loads(dumps(document)) == document


def test_no_exponent_notation_even_for_a_decimal_built_with_one():
    assert dumps([Decimal("1E+2"), Decimal("1.5E-1")]) == "[100,0.15]"


def test_strings_and_other_types_are_untouched():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    document = {"s": '"abc0"', "t": when, "n": None, "big": BIG}
    assert json_roundtrip(document) == {**document, "t": when.isoformat()}


def json_roundtrip(document):  # noqa: ANN001, ANN201
    return loads(encode(document, sort_keys=True, indent=2, ensure_ascii=True))


def test_non_finite_decimal_is_refused():
    with pytest.raises(ValueError, match="not a JSON number"):
        dumps({"x": Decimal("NaN")})


def test_the_app_provider_renders_responses_and_etag_text_exactly(sqlite_app):
    with sqlite_app.test_request_context():
        body = sqlite_app.json.response({"v": BIG}).get_data(as_text=True)
        hashed = flask_json.dumps({"v": BIG, "a": 1}, sort_keys=True)  # smorest's ETag text
    assert body == '{"v":21474836493028472805.28}\n'
    assert hashed == '{"a": 1, "v": 21474836493028472805.28}'


def test_loads_keeps_the_digits_sent():
    assert loads(b'{"p": 1.0000000000000000000001}') == {"p": Decimal("1.0000000000000000000001")}
