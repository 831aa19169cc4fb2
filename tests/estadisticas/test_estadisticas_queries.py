"""A fixed, small number of SQL statements per endpoint, whatever the data size, and
no scan of the daily rollups beyond the window's days, whatever the history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from electro_isla.cache import cache_manager
from electro_isla.extensions import db
from tests.estadisticas.estadisticas_data import build_shop, insert_shop
from tests.helpers import auth_headers, writes_settled

# endpoint -> (cached name, statements on a MISS). In America/Havana the month
# boundaries fall inside UTC days, so ventas, usuarios and reporte each read the
# raw rows of those partial days in one statement besides the rollups.
ENDPOINTS = {
    "ventas": ("estadisticas_ventas", 3),
    "usuarios": ("estadisticas_usuarios", 4),
    "productos": ("estadisticas_productos", 3),
    "reporte": ("reporte_general", 5),
}
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@contextmanager
def counting(app) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    writes_settled(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _miss_and_hit(app, client, headers, endpoint: str, name: str) -> tuple[int, int]:
    url = f"/api/admin/estadisticas/{endpoint}/"
    assert client.get(url, headers=headers).status_code == 200  # warms the caller's profile
    with app.app_context():
        cache_manager.invalidate(names=[name])
    with counting(app) as miss:
        response = client.get(url, headers=headers)
    assert response.headers["X-Cache"] == "MISS"
    with counting(app) as hit:
        response = client.get(url, headers=headers)
    assert response.headers["X-Cache"] == "HIT"
    return len(miss), len(hit)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_statement_count_does_not_grow_with_the_data(app, endpoint):
    name, expected_statements = ENDPOINTS[endpoint]
    app.config["TIMEZONE"] = "America/Havana"
    tz = ZoneInfo("America/Havana")
    client = app.test_client()
    with app.app_context():
        insert_shop(build_shop(1, NOW, tz, scale=1))
    headers = auth_headers(app, 1)
    small = _miss_and_hit(app, client, headers, endpoint, name)
    with app.app_context():
        insert_shop(build_shop(2, NOW, tz, scale=6, first_id=100_001))
    large = _miss_and_hit(app, client, headers, endpoint, name)
    assert small == large == (expected_statements, 0)


def _next_read_misses(app, endpoint: str):  # noqa: ANN001, ANN202
    """(client, url, an admin's headers) after one read of `endpoint` whose entry was
    then invalidated: the next GET is a MISS."""
    headers = auth_headers(app, 1)
    client = app.test_client()
    url = f"/api/admin/estadisticas/{endpoint}/"
    client.get(url, headers=headers)
    with app.app_context():
        cache_manager.invalidate(names=[ENDPOINTS[endpoint][0]])
    return client, url, headers


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_tables_a_miss_reads_are_declared_in_the_registry(app, endpoint):
    """Rollups count as the tables their triggers read: a write there invalidates."""
    from electro_isla.cache.registry import REGISTRY
    from electro_isla.estadisticas.models import FUENTES

    name = ENDPOINTS[endpoint][0]
    app.config["TIMEZONE"] = "America/Havana"
    with app.app_context():
        insert_shop(build_shop(1, NOW, ZoneInfo("America/Havana")))
        known = set(db.metadata.tables)
    client, url, headers = _next_read_misses(app, endpoint)
    with counting(app) as statements:
        assert client.get(url, headers=headers).headers["X-Cache"] == "MISS"
    # Every word that names a table (a column named like one only makes this stricter).
    words = {w for sql in statements for w in re.findall(r"[a-z_]+", sql.lower())}
    read = words & known
    assert any(t in FUENTES for t in read) or endpoint == "productos", read
    sources = set().union(*(FUENTES.get(t, {t}) for t in read))
    assert sources <= REGISTRY[name].tables, (read, REGISTRY[name].tables)


# The rollups with a row per UTC day: ten years of history are ten times their rows.
DAILY = {"estadisticas_pedidos_dia", "estadisticas_ventas_dia", "estadisticas_usuarios_dia"}


def _scans(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


@pytest.mark.parametrize("endpoint", ["ventas", "usuarios", "reporte"])
def test_a_miss_reads_the_daily_rollups_of_the_window_days_only(app, endpoint):
    """History before the window costs a MISS nothing: every scan of a daily rollup is
    bounded by dia (all-history totals come from a row per key, migration 0010), so a
    10x longer history does not grow the rows a MISS reads."""
    app.config["TIMEZONE"] = "UTC"
    tz = ZoneInfo("UTC")
    with app.app_context():
        insert_shop(build_shop(1, NOW, tz))
        # Six years before the window: rows the window never shows, but totals count.
        insert_shop(build_shop(2, NOW.replace(year=2020), tz, scale=3, first_id=100_001))
    client, url, headers = _next_read_misses(app, endpoint)
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    writes_settled(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url, headers=headers).headers["X-Cache"] == "MISS"
    finally:
        event.remove(engine, "before_cursor_execute", record)
    daily_scans = []
    with app.app_context():
        conn = db.session.connection()
        for statement, parameters in seen:
            if not any(t in statement for t in DAILY):
                continue
            (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).one()
            for node in _scans(plan[0]["Plan"]):
                if node.get("Relation Name") in DAILY:
                    bounds = " ".join(
                        node.get(k, "") for k in ("Filter", "Index Cond", "Recheck Cond")
                    )
                    daily_scans.append((node["Relation Name"], bounds))
        db.session.remove()
    assert daily_scans
    unbounded = [t for t, bounds in daily_scans if not re.search(r"\bdia\b", bounds)]
    assert unbounded == [], daily_scans
