"""HTTP face of a cached endpoint: X-Cache, ETag, 304, Cache-Control; auth on a hit costs no SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.usuarios.models import Usuario
from tests.cache.support import add_producto
from tests.helpers import user_with_role, writes_settled


def test_cached_list_sends_x_cache_etag_and_answers_304(app, client):
    producto_id = add_producto(app, "10.00")
    first = client.get("/api/productos/")
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "MISS"
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    second = client.get("/api/productos/")
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["ETag"] == etag
    assert second.json == first.json
    not_modified = client.get("/api/productos/", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["X-Cache"] == "HIT"
    assert not_modified.data == b""

    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("12.00")
        _db.session.commit()
    fresh = client.get("/api/productos/", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.headers["X-Cache"] == "MISS"
    assert fresh.headers["ETag"] != etag
    assert fresh.json["results"][0]["precio"] == 12.0


def test_cached_detail_and_unknown_query_parameters_share_one_entry(app, client):
    producto_id = add_producto(app, "10.00")
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "HIT"
    client.get("/api/productos/?page=1")
    # Parameters outside the whitelist never create new entries.
    assert client.get("/api/productos/?page=1&utm_source=x").headers["X-Cache"] == "HIT"


def test_uncached_endpoints_carry_no_x_cache(app, client):
    assert "X-Cache" not in client.get("/healthz").headers


def test_authenticated_hit_runs_no_sql_and_a_demotion_applies_next_request(app, client):
    uid, headers = user_with_role(app, "admin")
    assert client.get("/api/admin/cache/stats/", headers=headers).status_code == 200
    statements: list[str] = []
    with app.app_context():
        engine = _db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    writes_settled(app)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/api/admin/cache/stats/", headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements == []
    with app.app_context():
        _db.session.get(Usuario, uid).rol = "cliente"
        _db.session.commit()
    assert client.get("/api/admin/cache/stats/", headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("path", "rol", "paths"),
    [
        ("/api/productos/", None, ("MISS", "HIT")),  # a composed page (respond_page)
        ("/api/productos/{id}/", None, ("MISS", "HIT")),  # a rendered entry (respond)
        ("/api/perfil/", "cliente", ("MISS", "HIT")),
        # Recomputed statistics carry a new generado_en, hence a new tag: HIT only.
        ("/api/admin/estadisticas/productos/", "trabajador", ("HIT",)),
    ],
)
def test_weak_if_none_match_is_a_304_on_miss_and_hit(app, client, path, rol, paths):
    """RFC 9110 13.1.2: If-None-Match compares weakly; W/"<tag>" used to get a 200."""
    path = path.format(id=add_producto(app, "10.00"))
    headers = user_with_role(app, rol)[1] if rol else {}
    etag = client.get(path, headers=headers).headers["ETag"]
    if "MISS" in paths:
        with app.app_context():
            cache_manager.clear_all()
    for expected_cache in paths:
        answer = client.get(path, headers={**headers, "If-None-Match": f"W/{etag}"})
        assert answer.status_code == 304, (expected_cache, answer.status_code)
        assert answer.data == b""
        assert answer.headers["ETag"] == etag  # the strong tag a 200 carries
        assert answer.headers["X-Cache"] == expected_cache
    other = client.get(path, headers={**headers, "If-None-Match": 'W/"other", "x"'})
    assert other.status_code == 200 and other.headers["ETag"] == etag
