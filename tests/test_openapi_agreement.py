"""What the OpenAPI document promises about bodies and query strings, the API does."""

from __future__ import annotations

import pytest

from tests.helpers import error_keys, user_with_role
from tests.pedidos.test_pedidos_api import make_producto, place

BODY_METHODS = ("post", "patch", "put")


def document(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def concrete(path: str) -> str:
    """A documented path with every `{param}` replaced by 1."""
    parts = [("1" if p.startswith("{") and p.endswith("}") else p) for p in path.split("/")]
    return "/".join(parts)


def test_a_missing_required_body_is_a_422_and_an_optional_one_is_accepted(app):
    client = app.test_client()
    _, headers = user_with_role(app, "admin")
    # Usuario, producto and pedido 1 exist: the object is looked up before the body.
    assert place(app, client, headers, (make_producto(app), 1))["id"] == 1
    doc = document(client)
    seen = {"required": 0, "optional": 0}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in BODY_METHODS or "requestBody" not in op:
                continue
            response = client.open(concrete(path), method=method.upper(), headers=headers)
            if op["requestBody"].get("required"):
                seen["required"] += 1
                assert response.status_code == 422, (method, path, response.json)
                error_keys(response)
            else:
                seen["optional"] += 1
                assert response.status_code < 300, (method, path, response.json)
    assert seen["required"] >= 5 and seen["optional"] >= 5, seen  # 4 PATCHes + cache clear


@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/productos/1/",
        "/api/admin/pedidos/1/",
        "/api/admin/users/1/",
        "/api/perfil/",
    ],
)
def test_a_bodiless_patch_changes_nothing_and_is_accepted(app, path):
    """As DRF's partial update of an empty request.data (it was a 422)."""
    _, headers = user_with_role(app, "admin", first_name="Ana")
    client = app.test_client()
    assert place(app, client, headers, (make_producto(app, nombre="Radio"), 1))["id"] == 1
    response = client.patch(path, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["id"] == 1
    kept = {"nombre": "Radio", "estado": "pendiente", "first_name": "Ana"}
    assert any(response.json.get(k) == v for k, v in kept.items()), response.json


def test_an_empty_patch_body_changes_nothing_and_is_accepted(app):
    _, headers = user_with_role(app, "admin", first_name="Ana")
    response = app.test_client().patch("/api/perfil/", json={}, headers=headers)
    assert response.status_code == 200 and response.json["first_name"] == "Ana"


def test_clearing_the_cache_needs_no_body(app):
    _, headers = user_with_role(app, "admin")
    client = app.test_client()
    op = document(client)["paths"]["/api/admin/cache/clear/"]["post"]
    assert op["requestBody"].get("required") is False
    assert client.post("/api/admin/cache/clear/", headers=headers).status_code == 200


def list_query_parameters(doc: dict):
    for path, ops in doc["paths"].items():
        for param in ops.get("get", {}).get("parameters", []):
            if param.get("in") == "query":
                yield path, param


def test_every_list_parameter_may_be_empty_and_may_not_repeat(app):
    """`?x=` is documented (allowEmptyValue) and means "not given"; `?x=1&x=2` is a 422."""
    client = app.test_client()
    _, headers = user_with_role(app, "admin")
    doc = document(client)
    checked = 0
    for path, param in list_query_parameters(doc):
        name = param["name"]
        assert param.get("allowEmptyValue") is True, (path, name)
        empty = client.get(f"{path}?{name}=", headers=headers)
        assert empty.status_code == 200, (path, name, empty.json)
        assert empty.json == client.get(path, headers=headers).json
        repeated = client.get(f"{path}?{name}=&{name}=", headers=headers)
        assert repeated.status_code == 422, (path, name)
        assert error_keys(repeated) == {name}
        checked += 1
    assert checked >= 12


def test_repeated_page_is_refused(app):
    _, headers = user_with_role(app, "admin")
    response = app.test_client().get("/api/productos/?page=1&page=2", headers=headers)
    assert response.status_code == 422
    assert response.json["errors"] == {"page": ["Give this parameter once."]}


def test_precio_is_a_number_and_never_null(app):
    client = app.test_client()
    _, headers = user_with_role(app, "admin")
    schemas = document(client)["components"]["schemas"]
    for name in ("ProductoCreate", "ProductoUpdate"):
        precio = schemas[name]["properties"]["precio"]
        assert precio["type"] == "number" and not precio.get("nullable"), precio
        assert precio["exclusiveMinimum"] is True and precio["minimum"] == 0
        assert precio["multipleOf"] == 0.01
    body = {"nombre": "Radio", "precio": None}
    response = client.post("/api/admin/productos/", json=body, headers=headers)
    assert response.status_code == 422
    assert error_keys(response) == {"precio"}


def test_the_order_rules_json_schema_cannot_say_are_documented(client):
    doc = document(client)
    items = doc["components"]["schemas"]["PedidoCreate"]["properties"]["items"]
    assert items["uniqueItems"] is True
    assert "producto_id at most once" in items["description"]
    refused = doc["paths"]["/api/pedidos/"]["post"]["responses"]["422"]
    assert "repeated producto_id" in refused["description"]
    asignar = doc["paths"]["/api/admin/pedidos/{pedido_id}/asignar_mensajero/"]["post"]
    assert "mensajero" in asignar["responses"]["422"]["description"]
    mensajero_id = doc["components"]["schemas"]["AsignarMensajero"]["properties"]["mensajero_id"]
    assert "rol is mensajero" in mensajero_id["description"]
