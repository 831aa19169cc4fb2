"""405 and 308 answers: the JSON envelope, with the headers HTTP requires."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/readyz", {"GET", "HEAD", "OPTIONS"}),
        ("DELETE", "/api/productos/", {"GET", "HEAD", "OPTIONS"}),
        ("PUT", "/api/auth/login/", {"POST", "OPTIONS"}),
        ("POST", "/api/productos/1/", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_405_carries_allow(sqlite_app, method, path, allowed):
    response = sqlite_app.test_client().open(path, method=method)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert response.is_json and response.json["code"] == 405


@pytest.mark.parametrize(
    ("method", "path", "location"),
    [
        ("GET", "/api/productos?page=2", "/api/productos/?page=2"),
        ("POST", "/api/pedidos", "/api/pedidos/"),
        ("PATCH", "/api/admin/productos/1", "/api/admin/productos/1/"),
    ],
)
def test_308_to_the_canonical_path_is_a_json_envelope(sqlite_app, method, path, location):
    response = sqlite_app.test_client().open(path, method=method)
    assert response.status_code == 308
    assert response.headers["Location"].endswith(location)
    assert response.content_type == "application/json"
    assert response.json == {
        "code": 308,
        "status": "Permanent Redirect",
        "message": f"This resource lives at {response.headers['Location']}.",
    }
