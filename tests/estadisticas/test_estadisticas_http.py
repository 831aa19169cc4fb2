"""Access matrix and HTTP caching behaviour of the statistics endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from electro_isla.extensions import db
from electro_isla_testing.factories import PedidoFactory
from tests.helpers import ROLES, auth_headers, user_with_role

URLS = [
    f"/api/admin/estadisticas/{name}/" for name in ("ventas", "usuarios", "productos", "reporte")
]


@pytest.mark.parametrize("url", URLS)
def test_anonymous_and_bad_tokens_get_401_envelope(client, url):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        response = client.get(url, headers=headers)
        assert response.status_code == 401
        body = response.get_json()
        assert body["code"] == 401 and body["message"]


@pytest.mark.parametrize("rol", ROLES)
def test_only_staff_may_read_statistics(app, client, rol):
    _, headers = user_with_role(app, rol)
    allowed = rol in ("admin", "trabajador")
    for url in URLS:
        response = client.get(url, headers=headers)
        assert response.status_code == (200 if allowed else 403), (rol, url)
        if not allowed:
            assert response.get_json()["code"] == 403


def test_demoted_staff_loses_access_on_next_request(app, client):
    uid, headers = user_with_role(app, "trabajador")
    assert client.get(URLS[0], headers=headers).status_code == 200
    with app.app_context():
        from electro_isla.usuarios.models import Usuario

        db.session.get(Usuario, uid).rol = "cliente"
        db.session.commit()
    assert client.get(URLS[0], headers=headers).status_code == 403


@pytest.mark.parametrize("url", URLS)
def test_miss_then_hit_with_same_body_etag_and_304(app, client, url):
    _, headers = user_with_role(app, "admin")
    first = client.get(url, headers=headers)
    second = client.get(url, headers=headers)
    assert first.headers["X-Cache"] == "MISS" and second.headers["X-Cache"] == "HIT"
    assert second.headers["Cache-Control"] == "private, no-cache"
    # generado_en says when the figures were computed: a HIT keeps it.
    assert first.get_json() == second.get_json()
    assert first.headers["ETag"] == second.headers["ETag"]
    not_modified = client.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304


def test_month_rollover_never_serves_last_months_window(app, client):
    uid, _ = user_with_role(app, "admin")
    app.config["TIMEZONE"] = "America/Havana"
    url = URLS[0]
    # 04:59:59Z on Dec 1st is 23:59:59 on Nov 30th in Havana (UTC-5 in winter).
    with time_machine.travel(datetime(2026, 12, 1, 4, 59, 59, tzinfo=UTC), tick=False):
        headers = auth_headers(app, uid)
        november = client.get(url, headers=headers)
        assert client.get(url, headers=headers).headers["X-Cache"] == "HIT"
    with time_machine.travel(datetime(2026, 12, 1, 5, 0, 1, tzinfo=UTC), tick=False):
        december = client.get(url, headers=auth_headers(app, uid))
    assert november.get_json()["ventas_por_mes"][-1]["mes"] == "2026-11"
    assert december.headers["X-Cache"] == "MISS"
    assert december.get_json()["ventas_por_mes"][-1]["mes"] == "2026-12"
    assert december.get_json()["ventas_por_mes"][0]["mes"] == "2026-01"


def test_hosts_with_another_timezone_never_answer_each_others_months(make_app):
    """An operator's probe: a host with TIMEZONE=Asia/Kathmandu beside a UTC one (same
    database, Redis and prefix) answered the UTC host's cached month as a HIT."""
    utc, kathmandu = make_app(TIMEZONE="UTC"), make_app(TIMEZONE="Asia/Kathmandu")
    uid, _ = user_with_role(utc, "admin")
    # 20:00Z on Nov 30th is 01:45 on Dec 1st in Kathmandu (UTC+5:45): December there only.
    with utc.app_context():
        PedidoFactory(estado="confirmado", created_at=datetime(2026, 11, 30, 20, tzinfo=UTC))
        db.session.commit()
    with time_machine.travel(datetime(2026, 12, 6, 12, tzinfo=UTC), tick=False):
        url = "/api/admin/estadisticas/reporte/"
        first = utc.test_client().get(url, headers=auth_headers(utc, uid))
        assert first.get_json()["resumen"]["pedidos_mes"] == 0
        there = kathmandu.test_client().get(url, headers=auth_headers(kathmandu, uid))
    assert there.headers["X-Cache"] == "MISS"
    assert there.get_json()["resumen"]["pedidos_mes"] == 1


def test_reporte_carries_fecha_generacion_and_generado_en(app, client):
    uid, _ = user_with_role(app, "trabajador")
    with app.app_context():
        PedidoFactory(estado="confirmado", total=Decimal("12.50"))
    with time_machine.travel(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), tick=False):
        headers = auth_headers(app, uid)
        body = client.get(URLS[3], headers=headers).get_json()
    assert body["fecha_generacion"] == body["generado_en"]
    assert datetime.fromisoformat(body["generado_en"]) == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert body["resumen"]["ingresos_totales"] == 12.5
    assert body["resumen"]["pedidos_en_proceso"] == 1


def test_statistics_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for url in URLS:
        assert "get" in paths[url]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_money_past_float_precision_is_rendered_exactly(request, backend):
    """QA probe: valor_inventario came out as 2.1474836493028475e+19 (float()).

    Both values are ones the API accepts; Σ precio × stock is exact NUMERIC in
    PostgreSQL and must reach the client digit for digit, MISS and HIT alike.
    """
    from electro_isla.json import loads

    # SQLite (`make run`) multiplies its float NUMERIC: ...525696, not ...525163.53.
    app = request.getfixturevalue("app" if backend == "postgresql" else "sqlite_app")
    client = app.test_client()
    _, headers = user_with_role(app, "admin")
    bodies = [
        '{"nombre": "Caro", "precio": "9999999999.99", "stock": 2147483647, "categoria": "otros"}',
        '{"nombre": "Otro", "precio": 1234567.89, "stock": 3, "categoria": "otros"}',
    ]
    for body in bodies:
        created = client.post(
            "/api/admin/productos/", data=body, content_type="application/json", headers=headers
        )
        assert created.status_code == 201, created.get_json()
        assert b'"precio":9999999999.99' in created.data or b'"precio":1234567.89' in created.data
    caro = Decimal("9999999999.99") * 2147483647
    expected = caro + Decimal("1234567.89") * 3
    miss = client.get("/api/admin/estadisticas/productos/", headers=headers)
    hit = client.get("/api/admin/estadisticas/productos/", headers=headers)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert hit.data == miss.data
    assert f'"valor_inventario":{expected}'.encode() in miss.data
    assert b"e+" not in miss.data.lower()
    document = loads(hit.data)
    assert document["valor_inventario"] == expected
    rentable = document["productos_mas_rentables"][0]
    assert (rentable["precio"], rentable["valor_total"]) == (Decimal("9999999999.99"), caro)
