"""GET /admin/ and the charts it shows: access, SVG without script, ETag, and no extra computation."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from electro_isla.cache import cache_manager
from electro_isla.consola.graficos import GRAFICOS
from electro_isla.extensions import db
from electro_isla_testing.factories import PedidoFactory
from tests.helpers import ROLES, user_with_role, writes_settled

CHART_URLS = [f"/admin/graficos/{name}.svg" for name in GRAFICOS]


def test_the_page_is_public_html_that_may_load_only_its_own_origin(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    html = response.get_data(as_text=True)
    assert "/admin/static/consola.js" in html and "/admin/static/consola.css" in html
    assert "http://" not in html and "https://" not in html
    for asset in ("consola.js", "consola.css", "icono.svg"):
        assert client.get(f"/admin/static/{asset}").status_code == 200


@pytest.mark.parametrize("url", CHART_URLS)
def test_charts_need_a_staff_token(app, client, url):
    assert client.get(url).status_code == 401
    for rol in ROLES:
        _, headers = user_with_role(app, rol)
        response = client.get(url, headers=headers)
        assert response.status_code == (200 if rol in ("admin", "trabajador") else 403), rol
        assert response.get_json(silent=True) is None or response.get_json()["code"] == 403


def test_a_chart_is_svg_with_no_script_and_answers_304_to_its_tag(app, client):
    _, headers = user_with_role(app, "trabajador")
    response = client.get("/admin/graficos/ventas_por_mes.svg", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert svg.startswith("<svg")
    assert "kozea.github.io" not in svg and "<script src" not in svg  # pygal's JS turned off
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    again = client.get(
        "/admin/graficos/ventas_por_mes.svg",
        headers={**headers, "If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304


def test_an_unknown_chart_is_a_json_404(app, client):
    _, headers = user_with_role(app, "admin")
    response = client.get("/admin/graficos/nada.svg", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_charts_are_drawn_from_the_cached_statistics_without_computing_them(app, client):
    _, headers = user_with_role(app, "admin")
    with app.app_context():
        PedidoFactory(estado="entregado")
    for name in ("ventas", "usuarios", "productos"):
        assert client.get(f"/api/admin/estadisticas/{name}/", headers=headers).status_code == 200
    with app.app_context():
        before = cache_manager.get_stats()["fetches"]
        engine = db.engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    writes_settled(app)
    event.listen(engine, "before_cursor_execute", count)
    try:
        for url in CHART_URLS:
            assert client.get(url, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []  # no statistic computed, no SQL at all
    with app.app_context():
        assert cache_manager.get_stats()["fetches"] == before


def test_a_chart_follows_a_committed_change(app, client):
    _, headers = user_with_role(app, "admin")
    first = client.get("/admin/graficos/ventas_por_mes.svg", headers=headers)
    with app.app_context():
        PedidoFactory(estado="entregado")
    second = client.get("/admin/graficos/ventas_por_mes.svg", headers=headers)
    assert second.headers["ETag"] != first.headers["ETag"]
    assert second.get_data() != first.get_data()


@pytest.mark.parametrize(
    ("top", "labels"),
    [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (1234, [0, 500, 1000, 1500])],
)
def test_count_charts_are_graduated_in_whole_numbers(top, labels):
    """A probe: a stock of 3 was graduated 0, 0.8, 1.6, 2.4 (the top value unlabelled)."""
    import re

    doc = {"productos_por_categoria": [{"categoria": "otros", "stock_total": top}]}
    svg = GRAFICOS["stock_por_categoria"].dibujar(doc).render(is_unicode=True)
    shown = {float(t) for t in re.findall(r"<text[^>]*>([0-9.]+)</text>", svg)}
    assert shown == set(labels)


def test_an_empty_chart_says_so_in_spanish():
    svg = GRAFICOS["metodos_pago"].dibujar({"metodos_pago": []}).render(is_unicode=True)
    assert "Sin datos" in svg and "No data" not in svg


def test_a_window_without_sales_is_graduated_0_and_1():
    """A re-probe: an empty shop's sales chart was graduated 0, 0.2 … 1."""
    import re

    doc = {"ventas_por_mes": [{"mes": f"2026-{m:02d}", "total": "0.00"} for m in range(1, 13)]}
    svg = GRAFICOS["ventas_por_mes"].dibujar(doc).render(is_unicode=True)
    shown = {float(t) for t in re.findall(r"<text[^>]*>([0-9.]+)</text>", svg)}
    assert shown == {0, 1}
