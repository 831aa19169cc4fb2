"""Every figure of the four endpoints against a plain-Python computation.

A seeded random shop (timestamps seconds either side of local month
boundaries, a non-UTC time zone, ties, cancelled and pending orders, inactive
products, stock 0 and 1–9) is inserted on PostgreSQL and on SQLite; both must
answer exactly what `estadisticas_data.expected` computes from the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask

from electro_isla.extensions import db
from tests.estadisticas.estadisticas_data import build_shop, expected, insert_shop, month_labels
from tests.helpers import auth_headers

ENDPOINTS = ("ventas", "usuarios", "productos", "reporte")

# (TIMEZONE, frozen now, seed). Havana: 03:59:58Z on Nov 1st is still October there,
# and Cuba leaves DST at local midnight of 2026-11-01, so that midnight happens twice.
CASES = [
    ("America/Havana", datetime(2026, 11, 1, 3, 59, 58, tzinfo=UTC), 11),
    ("America/Havana", datetime(2026, 11, 25, 18, 0, tzinfo=UTC), 12),
    ("UTC", datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), 13),
    ("Asia/Kolkata", datetime(2026, 3, 31, 18, 30, 0, tzinfo=UTC), 14),
]


def _answers(app: Flask, tz: str, now: datetime, seed: int) -> tuple[dict, dict]:
    app.config["TIMEZONE"] = tz
    zone = ZoneInfo(tz)
    shop = build_shop(seed, now, zone)
    with app.app_context():
        insert_shop(shop)
        db.session.remove()
    headers = auth_headers(app, 1)
    client = app.test_client()
    got = {}
    for name in ENDPOINTS:
        response = client.get(f"/api/admin/estadisticas/{name}/", headers=headers)
        assert response.status_code == 200, response.get_json()
        got[name] = response.get_json()
    return got, expected(shop, now, zone)


def _compare(got: dict, want: dict, now: datetime) -> None:
    for name, figures in want.items():
        for key, value in figures.items():
            assert got[name][key] == value, f"{name}.{key}"
        extra = set(got[name]) - set(figures) - {"generado_en", "fecha_generacion"}
        assert not extra, f"{name}: unexpected keys {extra}"
        assert datetime.fromisoformat(got[name]["generado_en"]) == now
    assert datetime.fromisoformat(got["reporte"]["fecha_generacion"]) == now


def _assert_dataset_is_awkward(want: dict, got: dict, tz: str, now: datetime) -> None:
    """The dataset really contains the cases the test claims to cover."""
    vendidos = [p["cantidad_vendida"] for p in want["ventas"]["productos_mas_vendidos"]]
    assert len(set(vendidos)) < len(vendidos), "no tie among best sellers"
    counts = [u["pedidos_count"] for u in want["usuarios"]["usuarios_mas_activos"]]
    assert len(set(counts)) < len(counts), "no tie among active users"
    valores = [p["valor_total"] for p in want["productos"]["productos_mas_rentables"]]
    assert len(valores) == 10 and valores[0] == valores[1] == valores[2]
    assert want["productos"]["stock_bajo"] and want["productos"]["productos_sin_stock"]
    assert [m["mes"] for m in got["ventas"]["ventas_por_mes"]] == month_labels(now, ZoneInfo(tz))


@pytest.mark.parametrize(("tz", "now", "seed"), CASES, ids=[c[0] + str(c[2]) for c in CASES])
def test_figures_match_plain_python_on_postgresql(app, tz, now, seed):
    with time_machine.travel(now, tick=False):
        got, want = _answers(app, tz, now, seed)
    _assert_dataset_is_awkward(want, got, tz, now)
    _compare(got, want, now)


@pytest.mark.parametrize(
    ("tz", "now", "seed"), CASES[:2], ids=[c[0] + str(c[2]) for c in CASES[:2]]
)
def test_sqlite_answers_exactly_what_postgresql_answers(app, sqlite_app, tz, now, seed):
    with time_machine.travel(now, tick=False):
        on_pg, want = _answers(app, tz, now, seed)
        on_sqlite, _ = _answers(sqlite_app, tz, now, seed)
    _compare(on_sqlite, want, now)
    assert on_sqlite == on_pg


def test_empty_shop_gives_twelve_zero_months_and_zero_figures(app):
    now = datetime(2026, 11, 1, 3, 59, 58, tzinfo=UTC)
    app.config["TIMEZONE"] = "America/Havana"
    with time_machine.travel(now, tick=False):
        got, want = _answers_empty(app)
    assert [m["mes"] for m in got["ventas"]["ventas_por_mes"]] == [
        "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04",
        "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10",
    ]  # fmt: skip
    assert all(
        m == {"mes": m["mes"], "total": 0, "pedidos": 0} for m in got["ventas"]["ventas_por_mes"]
    )
    assert got["ventas"]["productos_mas_vendidos"] == [] and got["ventas"]["metodos_pago"] == []
    assert got["ventas"]["ticket_promedio"] == 0
    assert got["usuarios"]["usuarios_por_rol"] == [
        {"rol": "admin", "count": 1},
        {"rol": "trabajador", "count": 0},
        {"rol": "mensajero", "count": 0},
        {"rol": "cliente", "count": 0},
    ]
    assert got["usuarios"]["tasa_retencion"] == 0 and got["usuarios"]["total_usuarios"] == 0
    assert got["productos"] == {
        "productos_por_categoria": [],
        "stock_bajo": [],
        "productos_sin_stock": 0,
        "valor_inventario": 0,
        "productos_mas_rentables": [],
        "generado_en": got["productos"]["generado_en"],
    }
    assert got["reporte"]["resumen"] == {
        "total_usuarios": 1,
        "total_productos": 0,
        "total_pedidos": 0,
        "ingresos_totales": 0,
        "pedidos_mes": 0,
        "ingresos_mes": 0,
        "pedidos_pendientes": 0,
        "pedidos_en_proceso": 0,
    }
    assert want is None


def _answers_empty(app: Flask) -> tuple[dict, None]:
    from electro_isla_testing.factories import UsuarioFactory

    with app.app_context():
        admin_id = UsuarioFactory(rol="admin").id
    headers = auth_headers(app, admin_id)
    client = app.test_client()
    return {
        name: client.get(f"/api/admin/estadisticas/{name}/", headers=headers).get_json()
        for name in ENDPOINTS
    }, None
