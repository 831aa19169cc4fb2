"""Catalogue endpoints: public list and detail (cached), staff admin, role matrix, validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla_testing.factories import ProductoFactory
from tests.helpers import (
    ADMIN_MATRIX,
    CALLERS,
    STAFF_MATRIX,
    error_keys,
    headers_for,
    user_with_role,
    while_held,
)

PRODUCTO_KEYS = {
    "id",
    "nombre",
    "descripcion",
    "precio",
    "descuento",
    "precio_final",
    "stock",
    "categoria",
    "imagen_url",
    "activo",
    "created_at",
    "updated_at",
}


def make_producto(app, **fields) -> int:
    with app.app_context():
        return ProductoFactory(**fields).id


def snapshot(app) -> list[tuple]:
    """Every producto row, to prove a refused request wrote nothing."""
    with app.app_context():
        rows = _db.session.scalars(select(Producto).order_by(Producto.id)).all()
        return [
            (p.id, p.nombre, p.descripcion, p.precio, p.descuento, p.stock, p.categoria, p.activo)
            for p in rows
        ]


@pytest.fixture
def admin_headers(app):
    return user_with_role(app, "admin")[1]


# -- GET /api/productos/ ---------------------------------------------------------


def test_list_shows_active_productos_paginated(app, client):
    ids = [make_producto(app, nombre=f"Activo {n}") for n in range(5)]
    make_producto(app, nombre="Retirado", activo=False)

    response = client.get("/api/productos/?page_size=2")
    assert response.status_code == 200
    body = response.json
    assert body["count"] == 5
    assert [p["id"] for p in body["results"]] == ids[:2]
    assert set(body["results"][0]) == PRODUCTO_KEYS
    assert body["previous"] is None
    assert "page=2" in body["next"] and "page_size=2" in body["next"]

    last = client.get("/api/productos/?page=3&page_size=2").json
    assert [p["id"] for p in last["results"]] == ids[4:]
    assert last["next"] is None
    assert "page=2" in last["previous"]

    # Past the last page: DRF's 404 "Invalid page.".
    for _ in range(2):  # the cached page too
        past = client.get("/api/productos/?page=4&page_size=2")
        assert (past.status_code, past.json["message"]) == (404, "Invalid page.")


def test_the_first_page_of_an_empty_list_is_an_empty_page(client):
    body = client.get("/api/productos/?categoria=otros").json
    assert (body["count"], body["results"], body["next"], body["previous"]) == (0, [], None, None)


def test_list_filters_by_categoria_and_searches_name_and_description(app, client):
    tv = make_producto(app, nombre="Televisor LED", categoria="hogar_entretenimiento")
    make_producto(app, nombre="Taladro", categoria="herramientas", descripcion="percutor")
    solar = make_producto(
        app, nombre="Panel", categoria="energia_tecnologia", descripcion="Carga SOLAR"
    )
    make_producto(app, nombre="Televisor viejo", activo=False)

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/productos/?{query}")
        assert response.status_code == 200, response.json
        return [p["id"] for p in response.json["results"]]

    assert ids("categoria=hogar_entretenimiento") == [tv]
    assert ids("q=televisor") == [tv]
    assert ids("q=solar") == [solar]
    assert ids("q=SOLAR&categoria=herramientas") == []
    assert len(ids("categoria=&q=")) == 3  # empty filters mean no filter
    assert ids("q=%25") == []  # a literal %, not a wildcard
    # Every word, each in name or description, in any order (DRF's SearchFilter).
    assert ids("q=LED televisor") == [tv]
    assert ids("q=panel solar") == [solar]  # one word in the name, one in the description
    assert ids("q=televisor solar") == []
    assert ids('q="carga solar"') == [solar]  # a quoted phrase, as written
    assert ids('q="solar carga"') == []


BAD_QUERIES = (
    "categoria=juguetes",
    "page=0",
    "page_size=101",
    "page=abc",
    "q=" + "x" * 201,
    "q=a%00b",
)


def test_list_rejects_bad_query_with_422(client):
    wrong = []
    for query in BAD_QUERIES:
        response = client.get(f"/api/productos/?{query}")
        if response.status_code != 422 or "errors" not in response.json:
            wrong.append((query, response.status_code))
    assert wrong == []


def test_list_and_detail_say_miss_then_hit_and_answer_304(app, client):
    pid = make_producto(app)
    for url in ("/api/productos/", f"/api/productos/{pid}/"):
        first = client.get(url)
        assert first.headers["X-Cache"] == "MISS"
        assert first.headers["Cache-Control"] == "private, no-cache"
        etag = first.headers["ETag"]
        second = client.get(url)
        assert second.headers["X-Cache"] == "HIT"
        assert second.json == first.json
        assert second.headers["ETag"] == etag
        not_modified = client.get(url, headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert not_modified.data == b""
        other = client.get(url, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200


def test_etag_changes_when_the_producto_changes(app, client, admin_headers):
    pid = make_producto(app, precio=Decimal("10.00"))
    etag = client.get(f"/api/productos/{pid}/").headers["ETag"]
    client.patch(f"/api/admin/productos/{pid}/", json={"precio": 12.5}, headers=admin_headers)
    response = client.get(f"/api/productos/{pid}/", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json["precio"] == 12.5
    assert response.headers["ETag"] != etag


# -- GET /api/productos/<id>/ ------------------------------------------------------


def test_detail_shows_an_active_producto_with_exact_precio_final(app, client):
    pid = make_producto(
        app, nombre="Nevera", precio=Decimal("999.99"), descuento=15, stock=3, categoria="otros"
    )
    response = client.get(f"/api/productos/{pid}/")
    assert response.status_code == 200
    body = response.json
    assert set(body) == PRODUCTO_KEYS
    assert body["precio"] == 999.99
    assert body["descuento"] == 15
    assert body["precio_final"] == 849.99  # 849.9915 rounded half up, never through float
    assert body["stock"] == 3
    assert body["created_at"].endswith("+00:00")


@pytest.mark.parametrize("path", ["inactive", "999999", "99999999999999999999"])
def test_detail_404s_for_inactive_missing_and_absurd_ids(app, client, path):
    pid = make_producto(app, activo=False)
    url = f"/api/productos/{pid if path == 'inactive' else path}/"
    for _ in range(2):  # the cached copy of an inactive producto must 404 too
        response = client.get(url)
        assert response.status_code == 404
        assert response.json["code"] == 404


def test_an_id_in_other_digits_is_a_404(app, client):
    """Django's <int:pk> takes ASCII digits only; werkzeug's \\d took "１" (full width) as 1."""
    pid = make_producto(app)
    assert client.get(f"/api/productos/{pid}/").status_code == 200
    wide = "".join(chr(ord("０") + int(d)) for d in str(pid))
    response = client.get(f"/api/productos/{wide}/")
    assert (response.status_code, response.json["code"]) == (404, 404)


def test_deactivating_a_cached_producto_hides_it_at_once(app, client, admin_headers):
    pid = make_producto(app)
    assert client.get(f"/api/productos/{pid}/").status_code == 200
    assert client.get(f"/api/productos/{pid}/").headers["X-Cache"] == "HIT"
    assert client.get("/api/productos/").json["count"] == 1
    response = client.patch(
        f"/api/admin/productos/{pid}/", json={"activo": False}, headers=admin_headers
    )
    assert response.status_code == 200
    assert client.get(f"/api/productos/{pid}/").status_code == 404
    assert client.get("/api/productos/").json["count"] == 0


def test_freshness_after_admin_patch_across_two_app_instances(app, make_app, admin_headers):
    pid = make_producto(app, nombre="Radio", precio=Decimal("20.00"), stock=4)
    first, second = app.test_client(), make_app().test_client()
    for client in (first, second):
        for url in ("/api/productos/", f"/api/productos/{pid}/"):
            client.get(url)
            assert client.get(url).headers["X-Cache"] == "HIT"
    # The second instance shares Redis: it even hits what the first cached.
    assert second.get(f"/api/productos/{pid}/").headers["X-Cache"] == "HIT"

    response = first.patch(
        f"/api/admin/productos/{pid}/",
        json={"nombre": "Radio AM/FM", "precio": 25.5, "stock": 9},
        headers=admin_headers,
    )
    assert response.status_code == 200

    # The first reader after the commit recomputes; the other instance then hits that.
    for client, status in ((second, "MISS"), (first, "HIT")):
        detail = client.get(f"/api/productos/{pid}/")
        assert detail.headers["X-Cache"] == status
        assert (detail.json["nombre"], detail.json["precio"], detail.json["stock"]) == (
            "Radio AM/FM",
            25.5,
            9,
        )
        listed = client.get("/api/productos/").json["results"][0]
        assert (listed["nombre"], listed["precio"], listed["stock"]) == ("Radio AM/FM", 25.5, 9)


def test_a_new_producto_shows_in_the_cached_list(app, client, admin_headers):
    assert client.get("/api/productos/").json["count"] == 0
    assert client.get("/api/productos/").headers["X-Cache"] == "HIT"
    body = {"nombre": "Ventilador", "precio": 35, "categoria": "electrodomesticos"}
    assert client.post("/api/admin/productos/", json=body, headers=admin_headers).status_code == 201
    listed = client.get("/api/productos/?categoria=electrodomesticos").json
    assert [p["nombre"] for p in listed["results"]] == ["Ventilador"]
    assert client.get("/api/productos/").json["count"] == 1


# -- /api/admin/productos/ ------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_admin_list_matrix_and_includes_inactive(app, client, caller):
    make_producto(app, nombre="Visible")
    make_producto(app, nombre="Oculto", activo=False)
    response = client.get("/api/admin/productos/", headers=headers_for(app, caller))
    expected = STAFF_MATRIX[caller] or 200
    assert response.status_code == expected
    if expected == 200:
        assert response.json["count"] == 2
        assert "X-Cache" not in response.headers  # staff always read the database
        inactive = client.get(
            "/api/admin/productos/?activo=false", headers=headers_for(app, caller)
        )
        assert [p["nombre"] for p in inactive.json["results"]] == ["Oculto"]


@pytest.mark.parametrize("caller", CALLERS)
def test_admin_create_matrix(app, client, caller):
    body = {"nombre": "Batidora", "precio": "45.90", "descuento": 10, "stock": 7}
    response = client.post("/api/admin/productos/", json=body, headers=headers_for(app, caller))
    expected = STAFF_MATRIX[caller] or 201
    assert response.status_code == expected
    assert response.is_json
    with app.app_context():
        assert _db.session.scalar(select(func.count()).select_from(Producto)) == (
            1 if expected == 201 else 0
        )
    if expected == 201:
        created = response.json
        assert set(created) == PRODUCTO_KEYS
        assert created["precio"] == 45.9
        assert created["precio_final"] == 41.31
        assert (created["categoria"], created["activo"], created["descripcion"]) == (
            "otros",
            True,
            "",
        )


VALID = {"nombre": "Plancha", "precio": 30, "categoria": "electrodomesticos"}


OMIT = object()
# Each change to VALID must fail on the named field.
BAD_CREATES = [
    ({"nombre": OMIT}, "nombre"),
    ({"nombre": None}, "nombre"),
    ({"precio": OMIT}, "precio"),
    ({"nombre": ""}, "nombre"),
    ({"nombre": "   "}, "nombre"),
    ({"nombre": "x" * 201}, "nombre"),
    ({"nombre": "a\x00b"}, "nombre"),
    ({"descripcion": "a\ud800b"}, "descripcion"),
    ({"precio": 0}, "precio"),
    ({"precio": -1}, "precio"),
    ({"precio": 1.001}, "precio"),
    ({"precio": "NaN"}, "precio"),
    ({"precio": "Infinity"}, "precio"),
    ({"precio": True}, "precio"),
    ({"precio": 10_000_000_000}, "precio"),
    ({"precio": 1e30}, "precio"),
    ({"precio": "1E+400"}, "precio"),
    ({"descuento": 101}, "descuento"),
    ({"descuento": -1}, "descuento"),
    ({"descuento": True}, "descuento"),
    ({"descuento": 1.5}, "descuento"),
    ({"stock": -1}, "stock"),
    ({"stock": "3"}, "stock"),
    ({"stock": 2**31}, "stock"),
    ({"categoria": "juguetes"}, "categoria"),
    ({"activo": 1}, "activo"),
    ({"precio_final": 5}, "precio_final"),
    ({"id": 7}, "id"),
    ({"imagen_url": "javascript:alert(1)"}, "imagen_url"),
    ({"imagen_url": "data:image/png;base64,AAAA"}, "imagen_url"),
    ({"imagen_url": "imagenes/plancha.jpg"}, "imagen_url"),
    ({"imagen_url": "//evil.example/x.png"}, "imagen_url"),  # another host to a browser
    ({"imagen_url": "/\\evil.example/x.png"}, "imagen_url"),
]


def test_admin_create_validation_writes_nothing(app, client, admin_headers):
    wrong = []
    for change, field in BAD_CREATES:
        body = {k: v for k, v in {**VALID, **change}.items() if v is not OMIT}
        response = client.post("/api/admin/productos/", json=body, headers=admin_headers)
        if response.status_code != 422 or error_keys(response) != {field}:
            wrong.append((change, response.status_code, response.json))
    assert wrong == []
    assert snapshot(app) == []


def test_admin_create_malformed_json_is_400(app, client, admin_headers):
    response = client.post(
        "/api/admin/productos/",
        data='{"nombre": "x",',
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json["code"] == 400
    assert snapshot(app) == []


@pytest.mark.parametrize("caller", CALLERS)
def test_admin_detail_matrix_shows_inactive(app, client, caller):
    pid = make_producto(app, activo=False)
    response = client.get(f"/api/admin/productos/{pid}/", headers=headers_for(app, caller))
    expected = STAFF_MATRIX[caller] or 200
    assert response.status_code == expected
    if expected == 200:
        assert response.json["id"] == pid
        assert response.json["activo"] is False


def test_admin_detail_404(app, client, admin_headers):
    for path in ("12345", "99999999999999999999"):
        response = client.get(f"/api/admin/productos/{path}/", headers=admin_headers)
        assert response.status_code == 404
        assert response.json["code"] == 404
        patch = client.patch(f"/api/admin/productos/{path}/", json={}, headers=admin_headers)
        assert patch.status_code == 404


@pytest.mark.parametrize("caller", CALLERS)
def test_admin_patch_matrix(app, client, caller):
    pid = make_producto(app, nombre="Viejo", stock=1)
    response = client.patch(
        f"/api/admin/productos/{pid}/",
        json={"nombre": "Nuevo", "stock": 5, "descuento": 50},
        headers=headers_for(app, caller),
    )
    expected = STAFF_MATRIX[caller] or 200
    assert response.status_code == expected
    with app.app_context():
        producto = _db.session.get(Producto, pid)
        changed = (producto.nombre, producto.stock, producto.descuento)
    assert changed == (("Nuevo", 5, 50) if expected == 200 else ("Viejo", 1, 0))
    if expected == 200:
        assert response.json["precio_final"] == 50.0


BAD_PATCHES = [
    {"precio": 0},
    {"nombre": ""},
    {"stock": -5},
    {"descuento": "10"},
    {"categoria": "x"},
    {"nombre": "Bien", "stock": 1.5},  # one bad field: nothing changes
    {"precio_final": 1},
    {"created_at": "2020-01-01T00:00:00+00:00"},
    {"imagen_url": "JavaScript:alert(document.cookie)"},
]


@pytest.mark.parametrize(
    "imagen_url", ["", "/media/plancha.jpg", "https://cdn.example.com/p.jpg", "http://localhost/p"]
)
def test_imagen_url_is_empty_an_http_url_or_a_path_from_the_root(client, admin_headers, imagen_url):
    body = {**VALID, "imagen_url": imagen_url}
    response = client.post("/api/admin/productos/", json=body, headers=admin_headers)
    assert (response.status_code, response.json["imagen_url"]) == (201, imagen_url)


def test_admin_patch_validation_writes_nothing(app, client, admin_headers):
    pid = make_producto(app)
    before = snapshot(app)
    wrong = []
    for body in BAD_PATCHES:
        response = client.patch(f"/api/admin/productos/{pid}/", json=body, headers=admin_headers)
        if response.status_code != 422 or not error_keys(response):
            wrong.append((body, response.status_code))
    assert wrong == []
    assert snapshot(app) == before


@pytest.mark.parametrize("caller", CALLERS)
def test_admin_delete_matrix(app, client, caller):
    pid = make_producto(app)
    response = client.delete(f"/api/admin/productos/{pid}/", headers=headers_for(app, caller))
    expected = ADMIN_MATRIX[caller] or 204
    assert response.status_code == expected
    assert len(snapshot(app)) == (0 if expected == 204 else 1)
    if expected == 204:
        assert response.data == b""


def test_delete_of_a_producto_in_an_order_is_409_and_keeps_it(app, client, admin_headers):
    uid, _ = user_with_role(app, "cliente")
    with app.app_context():
        pid = ProductoFactory().id
        detalle = DetallePedido(
            producto_id=pid,
            producto_nombre="x",
            cantidad=1,
            precio_unitario=Decimal("100.00"),
            subtotal=Decimal("100.00"),
        )
        _db.session.add(
            Pedido(
                usuario_id=uid,
                metodo_pago="efectivo",
                total=Decimal("100.00"),
                direccion_entrega="Calle 1",
                telefono="555",
                detalles=[detalle],
            )
        )
        _db.session.commit()
    before = snapshot(app)
    response = client.delete(f"/api/admin/productos/{pid}/", headers=admin_headers)
    assert response.status_code == 409
    assert response.json["code"] == 409
    assert "deactivate" in response.json["message"]
    assert snapshot(app) == before


def test_delete_unknown_is_404_and_deleted_producto_disappears(app, client, admin_headers):
    assert client.delete("/api/admin/productos/4242/", headers=admin_headers).status_code == 404
    pid = make_producto(app)
    assert client.get(f"/api/productos/{pid}/").status_code == 200  # now cached
    assert client.delete(f"/api/admin/productos/{pid}/", headers=admin_headers).status_code == 204
    assert client.get(f"/api/productos/{pid}/").status_code == 404
    assert client.delete(f"/api/admin/productos/{pid}/", headers=admin_headers).status_code == 404


def test_a_patch_racing_a_delete_of_its_producto_is_404(app, client):
    """A probe: a PATCH whose producto was deleted between its read and its UPDATE got
    500 (StaleDataError: the UPDATE matched no row), 27 of 40 raced rounds. Here the
    DELETE is an open transaction, committed once the PATCH waits on the row's lock (or
    after 5 s)."""
    pid = make_producto(app, nombre="Antes")
    _, headers = user_with_role(app, "trabajador")
    response = while_held(
        app,
        "DELETE FROM productos WHERE id = :p",
        {"p": pid},
        lambda: client.patch(
            f"/api/admin/productos/{pid}/", json={"nombre": "Despues"}, headers=headers
        ),
    )
    assert response.status_code == 404, response.json
    assert response.json["message"] == "Producto not found."
    with app.app_context():
        assert _db.session.get(Producto, pid) is None
