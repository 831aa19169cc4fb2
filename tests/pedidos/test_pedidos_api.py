"""Orders: placing them atomically, reading them, moving them along, and who may do what."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import CALLERS, STAFF_MATRIX, error_keys, headers_for, user_with_role

PEDIDO_KEYS = {
    "id",
    "usuario_id",
    "estado",
    "metodo_pago",
    "total",
    "direccion_entrega",
    "telefono",
    "notas",
    "mensajero_id",
    "created_at",
    "updated_at",
    "fecha_entrega",
    "detalles",
}
DETALLE_KEYS = {"producto_id", "producto_nombre", "cantidad", "precio_unitario", "subtotal"}


def make_producto(app, **fields) -> int:
    with app.app_context():
        return ProductoFactory(**fields).id


def order_body(*items: tuple[int, int], **extra) -> dict:
    return {
        "items": [{"producto_id": pid, "cantidad": n} for pid, n in items],
        "metodo_pago": "efectivo",
        "direccion_entrega": "Calle 23 #456, La Habana",
        "telefono": "+53 5555 0101",
        **extra,
    }


def stock_of(app, *ids: int) -> list[int]:
    with app.app_context():
        return [_db.session.get(Producto, pid).stock for pid in ids]


def counts(app) -> tuple[int, int]:
    """(pedidos, detalles) rows, to prove a refused order wrote nothing."""
    with app.app_context():
        pedidos = _db.session.scalar(select(func.count()).select_from(Pedido))
        detalles = _db.session.scalar(select(func.count()).select_from(DetallePedido))
        return pedidos, detalles


def place(app, client, headers, *items: tuple[int, int]) -> dict:
    response = client.post("/api/pedidos/", json=order_body(*items), headers=headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def cliente(app):
    return user_with_role(app, "cliente")


@pytest.fixture
def admin_headers(app):
    return user_with_role(app, "admin")[1]


# -- POST /api/pedidos/ -------------------------------------------------------------


def test_order_takes_prices_and_discounts_from_the_database(app, client, cliente):
    uid, headers = cliente
    nevera = make_producto(app, nombre="Nevera", precio=Decimal("999.99"), descuento=15, stock=5)
    foco = make_producto(app, nombre="Foco", precio=Decimal("0.10"), descuento=0, stock=50)

    response = client.post(
        "/api/pedidos/", json=order_body((nevera, 2), (foco, 3), notas="Llamar"), headers=headers
    )
    assert response.status_code == 201
    pedido = response.json
    assert set(pedido) == PEDIDO_KEYS
    assert pedido["usuario_id"] == uid
    assert pedido["estado"] == "pendiente"
    assert pedido["mensajero_id"] is None and pedido["fecha_entrega"] is None
    assert pedido["notas"] == "Llamar"
    assert [set(d) for d in pedido["detalles"]] == [DETALLE_KEYS, DETALLE_KEYS]
    first, second = pedido["detalles"]
    assert (first["producto_id"], first["producto_nombre"], first["cantidad"]) == (
        nevera,
        "Nevera",
        2,
    )
    assert (first["precio_unitario"], first["subtotal"]) == (849.99, 1699.98)
    assert (second["precio_unitario"], second["subtotal"]) == (0.1, 0.3)
    assert pedido["total"] == 1700.28  # exact: 0.1 * 3 is not 0.30000000000000004 here
    assert stock_of(app, nevera, foco) == [3, 47]
    with app.app_context():
        stored = _db.session.get(Pedido, pedido["id"])
        assert stored.total == Decimal("1700.28")
        assert [d.subtotal for d in stored.detalles] == [Decimal("1699.98"), Decimal("0.30")]


@pytest.mark.parametrize("caller", CALLERS)
def test_every_logged_in_role_may_order_anonymous_is_401(app, client, caller):
    pid = make_producto(app, stock=2)
    response = client.post(
        "/api/pedidos/", json=order_body((pid, 1)), headers=headers_for(app, caller)
    )
    assert response.status_code == (401 if caller == "anonymous" else 201)
    assert response.is_json
    assert stock_of(app, pid) == [2 if caller == "anonymous" else 1]


# (how to spoil a valid body, the one key the 422's flat `errors` must have)
BAD_ORDERS = [
    (lambda b, p: b.update(items=[]), "items"),
    (lambda b, p: b.update(items=[{"producto_id": p, "cantidad": 1}] * 2), "items"),
    (
        lambda b, p: b.update(items=[{"producto_id": i, "cantidad": 1} for i in range(1, 52)]),
        "items",
    ),
    (lambda b, p: b["items"][0].update(cantidad=0), "items.0.cantidad"),
    (lambda b, p: b["items"][0].update(cantidad=-2), "items.0.cantidad"),
    (lambda b, p: b["items"][0].update(cantidad=True), "items.0.cantidad"),
    (lambda b, p: b["items"][0].update(cantidad="1"), "items.0.cantidad"),
    (lambda b, p: b["items"][0].update(cantidad=1.5), "items.0.cantidad"),
    (lambda b, p: b["items"][0].update(producto_id=str(p)), "items.0.producto_id"),
    (lambda b, p: b["items"][0].update(producto_id=2**40), "items.0.producto_id"),
    (lambda b, p: b["items"][0].update(precio_unitario=0.01), "items.0.precio_unitario"),
    (lambda b, p: b["items"][0].pop("cantidad"), "items.0.cantidad"),
    (lambda b, p: b.pop("items"), "items"),
    (lambda b, p: b.update(items="todo"), "items"),
    (lambda b, p: b.update(metodo_pago="bitcoin"), "metodo_pago"),
    (lambda b, p: b.pop("metodo_pago"), "metodo_pago"),
    (lambda b, p: b.pop("direccion_entrega"), "direccion_entrega"),
    (lambda b, p: b.update(direccion_entrega="  "), "direccion_entrega"),
    (lambda b, p: b.update(telefono="1" * 31), "telefono"),
    (lambda b, p: b.update(notas="a\x00b"), "notas"),
    (lambda b, p: b.update(direccion_entrega="\udfff"), "direccion_entrega"),
    (lambda b, p: b.update(total=0.01), "total"),
    (lambda b, p: b.update(estado="entregado"), "estado"),
    (lambda b, p: b.update(usuario_id=1), "usuario_id"),
]


def test_invalid_order_is_422_and_writes_nothing(app, client, cliente):
    pid = make_producto(app, stock=5)
    wrong = []
    for n, (mutate, where) in enumerate(BAD_ORDERS):
        body = order_body((pid, 1))
        mutate(body, pid)
        response = client.post("/api/pedidos/", json=body, headers=cliente[1])
        if response.status_code != 422 or error_keys(response) != {where}:
            wrong.append((n, response.status_code, response.json))
    assert wrong == []
    assert counts(app) == (0, 0)
    assert stock_of(app, pid) == [5]


def test_malformed_json_is_400_and_non_json_is_415(app, client, cliente):
    headers = {**cliente[1], "Content-Type": "application/json"}
    assert client.post("/api/pedidos/", data="{", headers=headers).status_code == 400
    response = client.post(
        "/api/pedidos/", data="items=1", headers={**cliente[1], "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("problem", ["unknown", "inactive"])
def test_unknown_or_inactive_producto_is_422_and_takes_no_stock(app, client, cliente, problem):
    good = make_producto(app, stock=5)
    bad = make_producto(app, stock=5, activo=False) if problem == "inactive" else 987654
    response = client.post(
        "/api/pedidos/", json=order_body((good, 2), (bad, 1)), headers=cliente[1]
    )
    assert response.status_code == 422
    assert response.json["errors"] == {"items.1": ["Unknown or inactive producto."]}
    assert counts(app) == (0, 0)
    assert stock_of(app, good) == [5]


def test_not_enough_stock_is_409_and_takes_nothing(app, client, cliente):
    plenty = make_producto(app, nombre="Mucho", stock=10)
    scarce = make_producto(app, nombre="Poco", stock=2)
    response = client.post(
        "/api/pedidos/", json=order_body((plenty, 4), (scarce, 3)), headers=cliente[1]
    )
    assert response.status_code == 409
    assert response.json["code"] == 409
    assert "Poco" in response.json["message"]
    assert counts(app) == (0, 0)
    assert stock_of(app, plenty, scarce) == [10, 2]
    # Exactly the stock left is fine.
    place(app, client, cliente[1], (plenty, 10), (scarce, 2))
    assert stock_of(app, plenty, scarce) == [0, 0]


def test_total_too_large_for_the_column_is_422(app, client, cliente):
    pid = make_producto(app, precio=Decimal("9999999.00"), stock=100_000)
    response = client.post("/api/pedidos/", json=order_body((pid, 100_000)), headers=cliente[1])
    assert response.status_code == 422
    assert counts(app) == (0, 0)
    assert stock_of(app, pid) == [100_000]


def test_an_order_shows_at_once_in_the_cached_catalogue(app, client, cliente):
    pid = make_producto(app, stock=10)
    for url in (f"/api/productos/{pid}/", "/api/productos/"):
        client.get(url)
        assert client.get(url).headers["X-Cache"] == "HIT"
    place(app, client, cliente[1], (pid, 3))
    assert client.get(f"/api/productos/{pid}/").json["stock"] == 7
    assert client.get("/api/productos/").json["results"][0]["stock"] == 7


# -- GET /api/mis-pedidos/ -------------------------------------------------------------


def test_mis_pedidos_lists_only_mine_newest_first(app, client, cliente):
    pid = make_producto(app, stock=100)
    _, other = user_with_role(app, "cliente")
    mine = [place(app, client, cliente[1], (pid, n))["id"] for n in (1, 2, 3)]
    place(app, client, other, (pid, 1))

    response = client.get("/api/mis-pedidos/", headers=cliente[1])
    assert response.status_code == 200
    assert response.json["count"] == 3
    assert [p["id"] for p in response.json["pedidos"]] == mine[::-1]
    assert set(response.json["pedidos"][0]) == PEDIDO_KEYS
    assert response.json["pedidos"][0]["detalles"][0]["cantidad"] == 3

    assert client.get("/api/mis-pedidos/", headers=other).json["count"] == 1
    assert client.get("/api/mis-pedidos/").status_code == 401
    empty = client.get("/api/mis-pedidos/", headers=user_with_role(app, "mensajero")[1]).json
    assert empty == {"count": 0, "pedidos": []}


# -- /api/admin/pedidos/ -----------------------------------------------------------------


@pytest.fixture
def orders(app, client, cliente, admin_headers):
    """Three orders; the courier `m1` holds the first two, `m2` the third."""
    pid = make_producto(app, stock=100)
    ids = [place(app, client, cliente[1], (pid, 1))["id"] for _ in range(3)]
    m1, m1_headers = user_with_role(app, "mensajero")
    m2, m2_headers = user_with_role(app, "mensajero")
    for pedido_id, mensajero in zip(ids, (m1, m1, m2), strict=True):
        response = client.post(
            f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
            json={"mensajero_id": mensajero},
            headers=admin_headers,
        )
        assert response.status_code == 200
    return {"ids": ids, "producto": pid, "m1": m1_headers, "m2": m2_headers}


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("anonymous", 401), ("cliente", 403), ("mensajero", 200), ("trabajador", 200), ("admin", 200)],
)
def test_admin_list_matrix(app, client, orders, caller, expected):
    response = client.get("/api/admin/pedidos/", headers=headers_for(app, caller))
    assert response.status_code == expected
    if expected == 200:
        # A fresh mensajero has nothing assigned; staff see all three.
        assert response.json["count"] == (0 if caller == "mensajero" else 3)


def test_admin_list_scopes_couriers_filters_and_paginates(app, client, orders, admin_headers):
    ids = orders["ids"]
    m1 = client.get("/api/admin/pedidos/", headers=orders["m1"]).json
    assert [p["id"] for p in m1["results"]] == [ids[1], ids[0]]
    m2 = client.get("/api/admin/pedidos/", headers=orders["m2"]).json
    assert [p["id"] for p in m2["results"]] == [ids[2]]

    client.patch(
        f"/api/admin/pedidos/{ids[0]}/", json={"estado": "confirmado"}, headers=admin_headers
    )
    confirmed = client.get("/api/admin/pedidos/?estado=confirmado", headers=admin_headers).json
    assert [p["id"] for p in confirmed["results"]] == [ids[0]]
    assert client.get("/api/admin/pedidos/?estado=", headers=admin_headers).json["count"] == 3

    page = client.get("/api/admin/pedidos/?page=2&page_size=2", headers=admin_headers).json
    assert page["count"] == 3
    assert [p["id"] for p in page["results"]] == [ids[0]]
    assert page["next"] is None and "page=1" in page["previous"]

    for query in ("estado=perdido", "page=0", "page_size=500"):
        response = client.get(f"/api/admin/pedidos/?{query}", headers=admin_headers)
        assert response.status_code == 422


def test_admin_detail_by_role(app, client, orders):
    first, _, third = orders["ids"]
    for caller in ("trabajador", "admin"):
        response = client.get(f"/api/admin/pedidos/{first}/", headers=headers_for(app, caller))
        assert response.status_code == 200
        assert set(response.json) == PEDIDO_KEYS
    assert client.get(f"/api/admin/pedidos/{first}/", headers=orders["m1"]).status_code == 200
    # Another courier's order does not exist for this one.
    assert client.get(f"/api/admin/pedidos/{third}/", headers=orders["m1"]).status_code == 404
    assert (
        client.get(f"/api/admin/pedidos/{first}/", headers=headers_for(app, "cliente")).status_code
        == 403
    )
    assert client.get(f"/api/admin/pedidos/{first}/").status_code == 401
    admin = headers_for(app, "admin")
    for path in ("424242", "99999999999999999999"):
        response = client.get(f"/api/admin/pedidos/{path}/", headers=admin)
        assert response.status_code == 404
        assert response.json["code"] == 404


# -- PATCH /api/admin/pedidos/<id>/ --------------------------------------------------------


def test_full_lifecycle_sets_fecha_entrega(app, client, cliente, admin_headers):
    pid = make_producto(app, stock=5)
    pedido_id = place(app, client, cliente[1], (pid, 2))["id"]
    url = f"/api/admin/pedidos/{pedido_id}/"
    for estado in ("confirmado", "en_preparacion", "en_camino"):
        response = client.patch(url, json={"estado": estado}, headers=admin_headers)
        assert response.status_code == 200
        assert response.json["estado"] == estado
        assert response.json["fecha_entrega"] is None
    delivered = client.patch(url, json={"estado": "entregado"}, headers=admin_headers).json
    assert delivered["estado"] == "entregado"
    assert delivered["fecha_entrega"].endswith("+00:00")
    assert stock_of(app, pid) == [3]  # delivery gives nothing back


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ((), "entregado"),
        ((), "pendiente"),
        ((), "en_camino"),
        (("confirmado",), "confirmado"),
        (("confirmado",), "pendiente"),
        (("confirmado", "en_preparacion", "en_camino", "entregado"), "cancelado"),
        (("cancelado",), "confirmado"),
        (("cancelado",), "cancelado"),
    ],
)
def test_transitions_outside_the_machine_are_409(app, client, cliente, admin_headers, path, bad):
    pid = make_producto(app, stock=5)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    url = f"/api/admin/pedidos/{pedido_id}/"
    for estado in path:
        assert client.patch(url, json={"estado": estado}, headers=admin_headers).status_code == 200
    stock_before = stock_of(app, pid)
    response = client.patch(url, json={"estado": bad, "notas": "cambio"}, headers=admin_headers)
    assert response.status_code == 409
    assert response.json["code"] == 409
    with app.app_context():
        pedido = _db.session.get(Pedido, pedido_id)
        assert (pedido.estado, pedido.notas) == ((path[-1] if path else "pendiente"), "")
    assert stock_of(app, pid) == stock_before


@pytest.mark.parametrize(
    "path", [(), ("confirmado",), ("confirmado", "en_preparacion", "en_camino")]
)
def test_cancelling_gives_the_stock_back_once(app, client, cliente, admin_headers, path):
    a = make_producto(app, stock=10)
    b = make_producto(app, stock=4)
    pedido_id = place(app, client, cliente[1], (b, 4), (a, 3))["id"]
    assert stock_of(app, a, b) == [7, 0]
    url = f"/api/admin/pedidos/{pedido_id}/"
    for estado in path:
        client.patch(url, json={"estado": estado}, headers=admin_headers)
    client.get(f"/api/productos/{b}/")  # cache the sold-out producto
    response = client.patch(url, json={"estado": "cancelado"}, headers=admin_headers)
    assert response.status_code == 200
    assert response.json["estado"] == "cancelado"
    assert stock_of(app, a, b) == [10, 4]
    assert client.get(f"/api/productos/{b}/").json["stock"] == 4
    assert client.patch(url, json={"estado": "cancelado"}, headers=admin_headers).status_code == 409
    assert stock_of(app, a, b) == [10, 4]


def test_a_cancel_that_would_overflow_the_stock_is_409_and_changes_nothing(
    app, client, cliente, admin_headers
):
    """An admin raised the stock to the column's largest value after the order: the
    cancel was a 422 about the body ("number out of range") that no retry could fix."""
    a = make_producto(app, stock=10)
    b = make_producto(app, stock=10)
    pedido_id = place(app, client, cliente[1], (a, 3), (b, 5))["id"]
    top = 2**31 - 1
    raised = client.patch(f"/api/admin/productos/{b}/", json={"stock": top}, headers=admin_headers)
    assert raised.status_code == 200, raised.json
    url = f"/api/admin/pedidos/{pedido_id}/"
    response = client.patch(url, json={"estado": "cancelado"}, headers=admin_headers)
    assert response.status_code == 409, response.json
    assert response.json["message"] == (
        f"Cancelling would put producto {b}'s stock over {top}: lower its stock first."
    )
    assert client.get(url, headers=admin_headers).json["estado"] == "pendiente"
    assert stock_of(app, a, b) == [7, top]  # a's stock was not given back either
    lowered = client.patch(f"/api/admin/productos/{b}/", json={"stock": 100}, headers=admin_headers)
    assert lowered.status_code == 200, lowered.json
    assert client.patch(url, json={"estado": "cancelado"}, headers=admin_headers).status_code == 200
    assert stock_of(app, a, b) == [10, 105]


def test_staff_may_edit_delivery_details(app, client, cliente):
    pid = make_producto(app)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    response = client.patch(
        f"/api/admin/pedidos/{pedido_id}/",
        json={"direccion_entrega": "Otra calle", "telefono": "555", "notas": "Portal azul"},
        headers=headers_for(app, "trabajador"),
    )
    assert response.status_code == 200
    assert (response.json["direccion_entrega"], response.json["notas"]) == (
        "Otra calle",
        "Portal azul",
    )
    assert response.json["estado"] == "pendiente"


def test_patch_access_for_couriers_clients_and_anonymous(app, client, orders):
    first, _, third = orders["ids"]
    url = f"/api/admin/pedidos/{first}/"
    assert client.patch(url, json={"estado": "confirmado"}).status_code == 401
    cliente_headers = headers_for(app, "cliente")
    assert (
        client.patch(url, json={"estado": "confirmado"}, headers=cliente_headers).status_code == 403
    )
    # A courier may move their own order's estado, nothing else.
    mine = client.patch(url, json={"estado": "confirmado"}, headers=orders["m1"])
    assert mine.status_code == 200 and mine.json["estado"] == "confirmado"
    notas = client.patch(url, json={"notas": "x"}, headers=orders["m1"])
    assert notas.status_code == 403
    theirs = client.patch(
        f"/api/admin/pedidos/{third}/", json={"estado": "confirmado"}, headers=orders["m1"]
    )
    assert theirs.status_code == 404
    with app.app_context():
        estados = [_db.session.get(Pedido, i).estado for i in orders["ids"]]
        notas_db = _db.session.get(Pedido, first).notas
    assert estados == ["confirmado", "pendiente", "pendiente"]
    assert notas_db == ""


def test_patch_validation_is_422_and_writes_nothing(app, client, cliente, admin_headers):
    pid = make_producto(app)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    bodies = [
        {"estado": "perdido"},
        {"estado": None},
        {"total": 1},
        {"mensajero_id": 1},
        {"telefono": ""},
        # Blank as POST /api/pedidos/ refuses it (a probe saw the PATCH store them).
        {"direccion_entrega": "   ", "telefono": "\t"},
        {"direccion_entrega": "   "},
        {"estado": "confirmado", "usuario_id": 2},
    ]
    for body in bodies:
        response = client.patch(
            f"/api/admin/pedidos/{pedido_id}/", json=body, headers=admin_headers
        )
        assert response.status_code == 422, body
    assert error_keys(response) == {"usuario_id"}
    blank = client.patch(
        f"/api/admin/pedidos/{pedido_id}/",
        json={"direccion_entrega": " ", "telefono": "\t"},
        headers=admin_headers,
    )
    assert error_keys(blank) == {"direccion_entrega", "telefono"}
    with app.app_context():
        pedido = _db.session.get(Pedido, pedido_id)
        assert (pedido.estado, pedido.telefono, pedido.mensajero_id) == (
            "pendiente",
            "+53 5555 0101",
            None,
        )
        assert pedido.direccion_entrega.strip()


def test_patch_unknown_order_is_404(app, client, admin_headers):
    response = client.patch(
        "/api/admin/pedidos/777/", json={"estado": "confirmado"}, headers=admin_headers
    )
    assert response.status_code == 404


# -- POST /api/admin/pedidos/<id>/asignar_mensajero/ -------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_asignar_mensajero_matrix(app, client, cliente, caller):
    pid = make_producto(app)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    mensajero, _ = user_with_role(app, "mensajero")
    response = client.post(
        f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
        json={"mensajero_id": mensajero},
        headers=headers_for(app, caller),
    )
    expected = STAFF_MATRIX[caller] or 200
    assert response.status_code == expected
    with app.app_context():
        assigned = _db.session.get(Pedido, pedido_id).mensajero_id
    assert assigned == (mensajero if expected == 200 else None)
    if expected == 200:
        assert response.json["mensajero_id"] == mensajero


def test_a_mensajero_changing_another_field_is_403_on_theirs_and_404_elsewhere(
    app, client, cliente, admin_headers
):
    """As DRF's get_object() first: a pedido not theirs (or none) is a 404 whatever the
    body (it was a 403 for any field but estado)."""
    pid = make_producto(app)
    suyo = place(app, client, cliente[1], (pid, 1))["id"]
    ajeno = place(app, client, cliente[1], (pid, 1))["id"]
    mensajero, headers = user_with_role(app, "mensajero")
    assigned = client.post(
        f"/api/admin/pedidos/{suyo}/asignar_mensajero/",
        json={"mensajero_id": mensajero},
        headers=admin_headers,
    )
    assert assigned.status_code == 200
    own = client.patch(f"/api/admin/pedidos/{suyo}/", json={"notas": "x"}, headers=headers)
    assert own.status_code == 403
    # Bodies the schema refuses too (a DRF client's probe: they were 422s).
    for body in ({"notas": "x"}, {"estado": "zzz"}, {"foo": 1}, None):
        for pedido_id in (ajeno, 999_999):
            other = client.patch(f"/api/admin/pedidos/{pedido_id}/", json=body, headers=headers)
            assert other.status_code == 404, (pedido_id, body)
    with app.app_context():
        assert {_db.session.get(Pedido, i).notas for i in (suyo, ajeno)} == {""}


@pytest.mark.parametrize("target", ["cliente", "trabajador", "inactive", "missing", "bool", "text"])
def test_asignar_requires_an_active_mensajero(app, client, cliente, admin_headers, target):
    pid = make_producto(app)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    if target in ("cliente", "trabajador"):
        value = user_with_role(app, target)[0]
    elif target == "inactive":
        value = user_with_role(app, "mensajero", is_active=False)[0]
    else:
        value = {"missing": 99999, "bool": True, "text": "5"}[target]
    response = client.post(
        f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
        json={"mensajero_id": value},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert error_keys(response) == {"mensajero_id"}
    with app.app_context():
        assert _db.session.get(Pedido, pedido_id).mensajero_id is None


def test_asignar_unknown_order_404_and_closed_order_409(app, client, cliente, admin_headers):
    mensajero, _ = user_with_role(app, "mensajero")
    body = {"mensajero_id": mensajero}
    response = client.post(
        "/api/admin/pedidos/31337/asignar_mensajero/", json=body, headers=admin_headers
    )
    assert response.status_code == 404
    pid = make_producto(app)
    pedido_id = place(app, client, cliente[1], (pid, 1))["id"]
    client.patch(
        f"/api/admin/pedidos/{pedido_id}/", json={"estado": "cancelado"}, headers=admin_headers
    )
    response = client.post(
        f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/", json=body, headers=admin_headers
    )
    assert response.status_code == 409
    unknown_field = client.post(
        f"/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
        json={**body, "extra": 1},
        headers=admin_headers,
    )
    assert unknown_field.status_code == 422


def test_openapi_lists_every_catalogue_and_order_path(client):
    paths = client.get("/api/openapi.json").json["paths"]
    for path in (
        "/api/productos/",
        "/api/productos/{producto_id}/",
        "/api/admin/productos/",
        "/api/admin/productos/{producto_id}/",
        "/api/pedidos/",
        "/api/mis-pedidos/",
        "/api/admin/pedidos/",
        "/api/admin/pedidos/{pedido_id}/",
        "/api/admin/pedidos/{pedido_id}/asignar_mensajero/",
    ):
        assert path in paths, path
    assert set(paths["/api/admin/productos/{producto_id}/"]) >= {"get", "patch", "delete"}
