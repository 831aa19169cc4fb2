"""Cached GETs answered from a body and ETag rendered at fetch time (cache/responses.py)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

from flask import json

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db as _db
from electro_isla.json import loads
from tests.cache.support import add_producto
from tests.helpers import user_with_role


def smorest_etag(app, document: dict) -> str:
    """The tag flask-smorest computes from a dumped document (no extra headers).

    Pass the body parsed by electro_isla.json.loads: money as the Decimals the
    schema dumped (response.json would make 12.00 the float 12.0).
    """
    with app.app_context():
        return hashlib.sha1(json.dumps(document, sort_keys=True).encode()).hexdigest()  # noqa: S324


def test_hit_body_and_etag_are_those_of_the_miss_and_of_smorest(app, client):
    producto_id = add_producto(app, "19.99", descuento=10, nombre="Radio ñandú")
    miss = client.get(f"/api/productos/{producto_id}/")
    hit = client.get(f"/api/productos/{producto_id}/")
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert hit.data == miss.data  # byte for byte
    assert hit.headers["ETag"] == miss.headers["ETag"]
    assert hit.headers["ETag"].strip('"') == smorest_etag(app, loads(hit.data))
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["Cache-Control"] == "private, no-cache"
    assert hit.json["precio"] == 19.99
    assert hit.json["precio_final"] == 17.99
    assert hit.json["nombre"] == "Radio ñandú"
    # The staff endpoint renders the same row through the plain smorest pipeline.
    _uid, staff = user_with_role(app, "admin")
    admin = client.get(f"/api/admin/productos/{producto_id}/", headers=staff)
    assert admin.data == hit.data


def test_hit_answers_304_from_the_stored_etag_and_goes_stale_never(app, client):
    producto_id = add_producto(app, "10.00")
    etag = client.get(f"/api/productos/{producto_id}/").headers["ETag"]
    not_modified = client.get(f"/api/productos/{producto_id}/", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["X-Cache"] == "HIT"
    assert not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    other = client.get(f"/api/productos/{producto_id}/", headers={"If-None-Match": '"nope"'})
    assert (other.status_code, other.headers["X-Cache"]) == (200, "HIT")
    assert other.headers["ETag"] == etag

    with app.app_context():
        _db.session.get(Producto, producto_id).precio = Decimal("12.00")
        _db.session.commit()
    fresh = client.get(f"/api/productos/{producto_id}/", headers={"If-None-Match": etag})
    assert (fresh.status_code, fresh.headers["X-Cache"]) == (200, "MISS")
    assert fresh.json["precio"] == 12.0
    assert fresh.headers["ETag"] != etag
    assert fresh.headers["ETag"].strip('"') == smorest_etag(app, loads(fresh.data))


def test_inactive_or_missing_producto_is_a_cached_404(app, client):
    producto_id = add_producto(app, activo=False)
    first = client.get(f"/api/productos/{producto_id}/")
    second = client.get(f"/api/productos/{producto_id}/")
    assert (first.status_code, first.headers["X-Cache"]) == (404, "MISS")
    assert (second.status_code, second.headers["X-Cache"]) == (404, "HIT")
    assert second.json["code"] == 404 and second.json["message"] == "Producto not found."
    assert "ETag" not in second.headers
    missing = client.get(f"/api/productos/{producto_id + 1000}/")
    assert missing.status_code == 404
    with app.app_context():
        _db.session.get(Producto, producto_id).activo = True
        _db.session.commit()
    now = client.get(f"/api/productos/{producto_id}/")
    assert (now.status_code, now.headers["X-Cache"]) == (200, "MISS")


def test_each_hit_is_logged_and_counted(make_app, tmp_path):
    app = make_app(LOG_DIR=str(tmp_path / "logs"))
    client = app.test_client()
    producto_id = add_producto(app)
    with app.app_context():
        before = cache_manager.get_stats()["families"]["producto"]
    for _ in range(4):
        assert client.get(f"/api/productos/{producto_id}/").status_code == 200
    with app.app_context():
        after = cache_manager.get_stats()["families"]["producto"]
    assert after["hits"] - before["hits"] == 3
    assert after["misses"] - before["misses"] == 1
    assert after["fetches"] - before["fetches"] == 1
    lines = (tmp_path / "logs" / "cache.log").read_text().splitlines()
    hits = [
        line for line in lines if f" HIT {app.config['CACHE_KEY_PREFIX']}:v:{{producto}}:" in line
    ]
    assert len(hits) == 3
    assert all(f":v:{{producto}}:{producto_id}:" in line and line.endswith(":-|r") for line in hits)


def test_render_runs_once_per_value_and_is_stored_beside_the_plain_value(app):
    producto_id = add_producto(app, "5.00")
    calls: list[dict] = []

    def fetch() -> dict:
        return {"id": producto_id, "precio": Decimal("5.00")}

    def render(data: dict) -> dict:
        calls.append(data)
        return {"body": f"<{data['precio']}>"}

    with app.app_context():
        first = cache_manager.get("producto", fetch, row=producto_id, render=render)
        again = cache_manager.get("producto", fetch, row=producto_id, render=render)
        plain = cache_manager.get("producto", fetch, row=producto_id)
        assert first == again == {"body": "<5.00>"}
        # Normalised through JSON (money stays an exact Decimal), rendered once.
        assert calls == [{"id": producto_id, "precio": Decimal("5.00")}]
        assert plain == {"id": producto_id, "precio": Decimal("5.00")}
        cache_manager.invalidate(rows=[("producto", producto_id)])
        cache_manager.get("producto", fetch, row=producto_id, render=render)
        assert len(calls) == 2


def test_rendered_answer_is_served_when_the_cache_is_down(make_app, tmp_path):
    from electro_isla_testing.servers import free_port

    up = make_app()
    producto_id = add_producto(up, "7.50")
    expected = up.test_client().get(f"/api/productos/{producto_id}/")
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", LOG_DIR=str(tmp_path))
    bypass = down.test_client().get(f"/api/productos/{producto_id}/")
    assert (bypass.status_code, bypass.headers["X-Cache"]) == (200, "BYPASS")
    assert bypass.data == expected.data
    assert bypass.headers["ETag"] == expected.headers["ETag"]
    assert Path(tmp_path / "cache.log").exists()


def smorest_page_body(app, document: dict) -> bytes:
    """What `@blp.response(200, ProductoPageSchema)` renders for `document`."""
    from flask import jsonify

    from electro_isla.catalogo.schemas import ProductoPageSchema

    with app.test_request_context():
        return jsonify(ProductoPageSchema().dump(document)).get_data()


def test_list_hit_splices_per_request_links_into_the_stored_results(app, client):
    for n in range(5):
        add_producto(app, f"{n + 1}.25", nombre=f"Lámpara {n}")
    url = "/api/productos/?page=2&page_size=2"
    miss = client.get(url)
    hit = client.get(url)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert hit.data == miss.data
    assert hit.headers["ETag"] == miss.headers["ETag"]
    page = hit.json
    assert page["count"] == 5 and len(page["results"]) == 2
    assert page["next"] == "http://localhost/api/productos/?page=3&page_size=2"
    assert page["previous"] == "http://localhost/api/productos/?page=1&page_size=2"
    assert hit.data == smorest_page_body(app, page)
    assert hit.headers["ETag"].strip('"') == smorest_etag(app, loads(hit.data))

    # Another host: same cached entry (HIT), its own links and so its own tag.
    other = client.get(url, base_url="http://tienda.example")
    assert other.headers["X-Cache"] == "HIT"
    assert other.json["next"] == "http://tienda.example/api/productos/?page=3&page_size=2"
    assert other.json["results"] == page["results"]
    assert other.headers["ETag"].strip('"') == smorest_etag(app, loads(other.data))
    assert other.headers["ETag"] != hit.headers["ETag"]

    etag = hit.headers["ETag"]
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.headers["X-Cache"]) == (304, "HIT")
    assert not_modified.data == b""
    last = client.get("/api/productos/?page=3&page_size=2")
    assert last.json["next"] is None and len(last.json["results"]) == 1
    assert last.data == smorest_page_body(app, last.json)


def test_list_in_debug_mode_keeps_the_smorest_path(make_app):
    app = make_app(DEBUG=True)
    add_producto(app, "3.00")
    client = app.test_client()
    first, second = client.get("/api/productos/"), client.get("/api/productos/")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.data == first.data
    assert second.data == smorest_page_body(app, second.json)  # indented, not spliced
    assert b'\n  "count": 1' in second.data


def test_cache_warm_fills_the_entry_the_list_endpoint_reads(app, client):
    from electro_isla.cache.commands import run_warmers

    add_producto(app, "4.00")
    with app.app_context():
        run_warmers()
    first = client.get("/api/productos/")
    assert (first.status_code, first.headers["X-Cache"]) == (200, "HIT")
    assert first.json["count"] == 1
