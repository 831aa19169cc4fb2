"""electro_isla/rendering.py: the conditional GET on flask-smorest's public API only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "electro_isla"
CONDITIONAL_GETS = {
    "/api/productos/",
    "/api/productos/{producto_id}/",
    "/api/perfil/",
    "/api/admin/estadisticas/ventas/",
    "/api/admin/estadisticas/usuarios/",
    "/api/admin/estadisticas/productos/",
    "/api/admin/estadisticas/reporte/",
}


def private_library_names(source: str) -> list[str]:
    """`from lib import _x`, and `blp._x` / `api._x` on a smorest Blueprint or Api."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("electro_isla"):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in {"blp", "api", "current_api", "sblp"}
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_flask_smorest():
    used = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if (names := private_library_names(path.read_text()))
    }
    assert used == {}


def test_every_conditional_get_documents_if_none_match_304_and_its_etag(sqlite_app):
    paths = sqlite_app.test_client().get("/api/openapi.json").get_json()["paths"]
    documented = set()
    for path, ops in paths.items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            if "304" not in op.get("responses", {}):
                assert {"$ref": "#/components/parameters/IF_NONE_MATCH"} not in op.get(
                    "parameters", []
                ), (method, path)
                continue
            documented.add(path)
            assert method == "get", path
            assert op["parameters"][-1] == {"$ref": "#/components/parameters/IF_NONE_MATCH"}
            assert op["responses"]["200"]["headers"]["ETag"] == {
                "$ref": "#/components/headers/ETAG"
            }
    assert documented == CONDITIONAL_GETS
    # Query parameters of a list survive beside the header.
    names = [p.get("name") for p in paths["/api/productos/"]["get"]["parameters"]]
    assert names[:4] == ["page", "page_size", "categoria", "q"]


def test_head_answers_304_and_an_unconditional_method_never_does(app, client):
    from tests.cache.support import add_producto

    producto_id = add_producto(app, "3.50")
    url = f"/api/productos/{producto_id}/"
    etag = client.get(url).headers["ETag"]
    head = client.head(url, headers={"If-None-Match": etag})
    assert (head.status_code, head.headers["ETag"]) == (304, etag)
    star = client.get(url, headers={"If-None-Match": "*"})
    assert star.status_code == 304 and star.data == b""
