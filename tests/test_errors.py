"""The JSON error envelope for inputs that used to reach a 500."""

from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from electro_isla.fields import Money
from electro_isla.usuarios.models import Usuario
from tests.helpers import error_keys, user_with_role


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{bad", "Malformed JSON body."),
    ],
)
def test_unstorable_or_malformed_json_is_a_400_envelope(client, body, message):
    response = client.post("/api/auth/login/", data=body, content_type="application/json")
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["code"] == 400 and payload["status"] == "Bad Request"
    assert message in payload["message"]
    # API.md: `errors` only for validation failures (422); a malformed body is a 400.
    assert "errors" not in payload


def test_lone_surrogate_is_a_422_naming_the_field(client):
    body = '{"username": "a\\ud800", "password": "x"}'
    response = client.post("/api/auth/login/", data=body, content_type="application/json")
    assert response.status_code == 422
    assert error_keys(response) == {"username"}


def test_valid_surrogate_pair_passes_through(client):
    body = '{"username": "a\\ud83d\\ude00b", "password": "xxxxxxxxx"}'
    response = client.post("/api/auth/login/", data=body, content_type="application/json")
    assert response.status_code == 401


def test_non_json_body_is_415(client):
    response = client.post("/api/auth/login/", data="username=a", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["code"] == 415


class _MoneySchema(Schema):
    m = Money()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("path", "template", "role"),
    [
        # An unknown key holding it: the registration was a 201 and wrote a usuario.
        (
            "/api/auth/register/",
            '{{"username": "nan1", "email": "nan1@example.test", '
            '"password": "password123", "extra": {}}}',
            None,
        ),
        ("/api/auth/login/", '{{"username": "a", "password": "b", "x": {}}}', None),
        ("/api/admin/productos/", '{{"nombre": "x", "stock": 1, "precio": {}}}', "admin"),
    ],
)
def test_nan_and_infinity_are_not_json_a_400_writing_nothing(
    app, client, path, template, role, constant
):
    headers = user_with_role(app, role)[1] if role else {}
    with app.app_context():
        before = Usuario.query.count()
    body = template.format(constant)
    response = client.post(path, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message"] == "Malformed JSON body."
    with app.app_context():
        assert Usuario.query.count() == before


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("1e30", "At most 9999999999.99."),
        ("1E+400", "At most 9999999999.99."),
        ("1E-999999999", "At most two decimals."),
        ("12.345", "At most two decimals."),
        ("NaN", "Not a valid amount."),
        (True, "Not a valid amount."),
    ],
)
def test_money_refuses_what_numeric_12_2_cannot_hold(raw, error):
    with pytest.raises(ValidationError) as info:
        _MoneySchema().load({"m": raw})
    assert info.value.messages == {"m": [error]}


@pytest.mark.parametrize("raw", ["12.30", "9999999999.99", 5, "0.01"])
def test_money_keeps_exact_amounts(raw):
    assert str(_MoneySchema().load({"m": raw})["m"]) == str(raw)


def test_304_repeats_the_matching_etag_without_a_body(sqlite_app):
    from electro_isla.catalogo.models import Producto
    from electro_isla.extensions import db

    with sqlite_app.app_context():
        db.session.add(Producto(nombre="Radio", precio="10.00", stock=1, categoria="otros"))
        db.session.commit()
    client = sqlite_app.test_client()
    etag = client.get("/api/productos/1/").headers["ETag"]
    response = client.get("/api/productos/1/", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.data == b""
    other = client.get("/api/productos/1/", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.headers["ETag"] == etag


def test_nul_in_usuario_text_is_a_field_422_and_writes_nothing(app):
    from electro_isla.extensions import db
    from electro_isla.usuarios.models import Usuario
    from tests.helpers import user_with_role

    uid, headers = user_with_role(app, "admin", last_name="Antes")
    client = app.test_client()
    for path, body, field in [
        ("/api/perfil/", {"direccion": "a\x00b"}, "direccion"),
        (f"/api/admin/users/{uid}/", {"last_name": "a\x00b"}, "last_name"),
    ]:
        response = client.patch(path, json=body, headers=headers)
        assert response.status_code == 422
        assert error_keys(response) == {field}
    response = client.get("/api/admin/users/?q=a%00b", headers=headers)
    assert response.status_code == 422
    with app.app_context():
        usuario = db.session.get(Usuario, uid)
        assert (usuario.last_name, usuario.direccion) == ("Antes", "")


# Python refuses int("1" * 4301) (ValueError, not JSONDecodeError): found by the
# QA probe as a 500 on every JSON endpoint, anonymous login included.
HUGE_INTEGER = "1" * 5000


@pytest.mark.parametrize(
    ("path", "body", "role"),
    [
        ("/api/auth/login/", f'{{"username": "a", "password": {HUGE_INTEGER}}}', None),
        ("/api/auth/register/", f'{{"username": {HUGE_INTEGER}}}', None),
        ("/api/admin/productos/", f'{{"nombre": "x", "stock": {HUGE_INTEGER}}}', "admin"),
        ("/api/admin/productos/", f"[{HUGE_INTEGER}]", "trabajador"),
    ],
)
def test_integer_past_the_int_string_limit_is_the_malformed_json_400(app, client, path, body, role):
    headers = user_with_role(app, role)[1] if role else {}
    response = client.post(path, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["message"] == "Malformed JSON body."


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("1e999999999", "At most 9999999999.99."),  # used to raise decimal.Overflow
        ("-1e999999999", "At most 9999999999.99."),
        (Decimal("1e999999999"), "At most 9999999999.99."),
        ("١٢", "Not a valid amount."),
        ("1_000", "Not a valid amount."),
        (" 12 ", "Not a valid amount."),
        ("0x10", "Not a valid amount."),
        (Decimal("1.0000000000000000000001"), "At most two decimals."),
        (Decimal("0.001"), "At most two decimals."),
    ],
)
def test_money_accepts_only_plain_exact_amounts(raw, error):
    with pytest.raises(ValidationError) as info:
        _MoneySchema().load({"m": raw})
    assert info.value.messages == {"m": [error]}


@pytest.mark.parametrize("raw", [Decimal("12.30"), Decimal("12.3000"), "-0.5", "1.5e2"])
def test_money_keeps_exact_decimal_and_plain_string_amounts(raw):
    assert _MoneySchema().load({"m": raw})["m"] == Decimal(str(raw))


@pytest.mark.parametrize(
    "precio", ['"1e999999999"', "1e999999999", '"١٢"', '"1_000"', "1.0000000000000000000001"]
)
def test_admin_create_refuses_money_that_is_not_exact_plain_decimal(app, client, precio):
    headers = user_with_role(app, "admin")[1]
    body = f'{{"nombre": "Radio", "precio": {precio}, "stock": 1, "categoria": "otros"}}'
    response = client.post(
        "/api/admin/productos/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 422, response.get_json()
    assert error_keys(response) == {"precio"}
    assert client.get("/api/admin/productos/", headers=headers).get_json()["count"] == 0


@pytest.mark.parametrize(
    ("charset", "status"),
    [("latin-1", 415), ("utf-16", 415), ("UTF-8", 401), ("utf8", 401), (None, 401)],
)
def test_a_body_declared_in_another_charset_is_a_415(client, charset, status):
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    body = '{"username": "nadie", "password": "x"}'
    response = client.post("/api/auth/login/", data=body, content_type=content_type)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == status
