"""Every source of a 422 answers the flat `errors` of API.md's Conventions.

One test per source: body and query-string schemas, the lone-surrogate check,
the DataError safety net and the domain's own refusals. Each asserts the exact
keys (`error_keys` also checks that every value is a list of strings and that no
key names a request location).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from electro_isla.extensions import db as _db
from electro_isla_testing.factories import PedidoFactory, ProductoFactory
from tests.helpers import error_keys, user_with_role

ORDER = {
    "metodo_pago": "efectivo",
    "direccion_entrega": "Calle 23 #456, La Habana",
    "telefono": "+53 5555 0101",
}


def producto(app, **fields) -> int:
    with app.app_context():
        return ProductoFactory(**fields).id


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        # A field as sent; several fields at once.
        ({"username": "ana", "email": "ana@example.com", "password": "corta"}, {"password"}),
        ({"username": "", "email": "no", "password": "x" * 8}, {"username", "email"}),
        # The body as a whole.
        (["not", "an", "object"], {"non_field_errors"}),
        ("texto", {"non_field_errors"}),
    ],
)
def test_body_schema_errors_are_flat(client, body, keys):
    response = client.post("/api/auth/register/", json=body)
    assert response.status_code == 422
    assert error_keys(response) == keys
    assert response.json["message"] == "The request failed validation; see errors."


def test_nested_body_errors_are_named_by_dotted_path(app, client):
    _, headers = user_with_role(app, "cliente")
    pid = producto(app, stock=5)
    body = {
        **ORDER,
        "items": [{"producto_id": pid, "cantidad": 0}, "no es un item", {"producto_id": pid}],
    }
    response = client.post("/api/pedidos/", json=body, headers=headers)
    assert response.status_code == 422
    assert error_keys(response) == {"items.0.cantidad", "items.1", "items.2.cantidad"}


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("page_size=0", {"page_size"}),
        ("page=abc&page_size=500", {"page", "page_size"}),
        ("estado=volando", {"estado"}),
    ],
)
def test_query_string_errors_are_named_by_parameter(app, client, query, keys):
    _, headers = user_with_role(app, "admin")
    response = client.get(f"/api/admin/pedidos/?{query}", headers=headers)
    assert response.status_code == 422
    assert error_keys(response) == keys


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ('{"username": "a\\ud800", "password": "x"}', {"username"}),
        ('"\\udfff"', {"non_field_errors"}),
    ],
)
def test_lone_surrogates_are_flat(client, body, keys):
    response = client.post("/api/auth/login/", data=body, content_type="application/json")
    assert response.status_code == 422
    assert error_keys(response) == keys


def test_the_dataerror_safety_net_answers_non_field_errors(app, client):
    """A value PostgreSQL refuses that no schema caught (here a test-only route)."""

    def out_of_range() -> str:
        _db.session.execute(text("SELECT CAST(:v AS integer)"), {"v": 2**40})
        return "unreachable"

    app.add_url_rule("/test-only/out-of-range/", view_func=out_of_range)
    response = client.get("/test-only/out-of-range/")
    assert response.status_code == 422
    assert error_keys(response) == {"non_field_errors"}
    assert response.json["errors"]["non_field_errors"] == [response.json["message"]]


@pytest.mark.parametrize("problem", ["unknown", "inactive"])
def test_unknown_or_inactive_producto_names_its_item(app, client, problem):
    _, headers = user_with_role(app, "cliente")
    good = producto(app, stock=5)
    bad = producto(app, activo=False) if problem == "inactive" else 987654
    items = [{"producto_id": good, "cantidad": 1}, {"producto_id": bad, "cantidad": 1}]
    response = client.post("/api/pedidos/", json={**ORDER, "items": items}, headers=headers)
    assert response.status_code == 422
    assert response.json["errors"] == {"items.1": ["Unknown or inactive producto."]}


def test_order_total_too_large_names_items(app, client):
    _, headers = user_with_role(app, "cliente")
    pid = producto(app, precio=Decimal("9999999.99"), stock=100_000)
    body = {**ORDER, "items": [{"producto_id": pid, "cantidad": 100_000}]}
    response = client.post("/api/pedidos/", json=body, headers=headers)
    assert response.status_code == 422
    assert error_keys(response) == {"items"}


@pytest.mark.parametrize("target", ["cliente", "missing"])
def test_mensajero_id_not_a_mensajero_is_named(app, client, target):
    cliente_id, _ = user_with_role(app, "cliente")
    _, headers = user_with_role(app, "admin")
    with app.app_context():
        pedido_id = PedidoFactory(usuario_id=cliente_id, total=Decimal("1.00")).id
    mensajero_id = cliente_id if target == "cliente" else 99_999
    response = client.post(
        f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
        json={"mensajero_id": mensajero_id},
        headers=headers,
    )
    assert response.status_code == 422
    assert error_keys(response) == {"mensajero_id"}


def test_estado_value_is_named(app, client):
    cliente_id, _ = user_with_role(app, "cliente")
    _, headers = user_with_role(app, "admin")
    with app.app_context():
        pedido_id = PedidoFactory(usuario_id=cliente_id, total=Decimal("1.00")).id
    response = client.patch(
        f"/api/admin/pedidos/{pedido_id}/", json={"estado": "volando"}, headers=headers
    )
    assert response.status_code == 422
    assert error_keys(response) == {"estado"}


def test_a_422_without_field_messages_still_has_errors(app, client):
    """abort(422) with a message only (any future domain refusal) gets non_field_errors."""
    from flask_smorest import abort

    def refuse() -> None:
        abort(422, message="Nope.")

    app.add_url_rule("/test-only/refuse/", view_func=refuse)
    response = client.get("/test-only/refuse/")
    assert response.status_code == 422
    assert response.json["errors"] == {"non_field_errors": ["Nope."]}


def test_the_documents_error_schema_is_the_flat_shape(client):
    """The fuzzer checks every answer against this schema, so it must refuse the old nesting."""
    import jsonschema_rs

    schema = client.get("/api/openapi.json").json["components"]["schemas"]["Error"]
    validator = jsonschema_rs.validator_for(schema)
    answer = client.post("/api/auth/register/", json={"username": ""}).json
    assert validator.is_valid(answer)
    assert not validator.is_valid({**answer, "errors": {"json": {"username": ["Too short."]}}})
    assert not validator.is_valid({**answer, "errors": {"username": "Too short."}})
