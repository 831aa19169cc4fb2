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
        # A method the slashed route does not serve: werkzeug answered 404 (QA probe).
        ("GET", "/api/auth/login", "/api/auth/login/"),
        ("DELETE", "/api/productos?q=x", "/api/productos/?q=x"),
        (
            "GET",
            "/api/admin/pedidos/1/asignar_mensajero",
            "/api/admin/pedidos/1/asignar_mensajero/",
        ),
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


def test_a_redirect_for_an_unserved_method_leads_to_the_405(sqlite_app):
    client = sqlite_app.test_client()
    redirected = client.get("/api/auth/login")
    assert redirected.status_code == 308
    followed = client.get(redirected.headers["Location"])
    assert followed.status_code == 405
    assert {m.strip() for m in followed.headers["Allow"].split(",")} == {"POST", "OPTIONS"}


@pytest.mark.parametrize("path", ["/api/no-existe", "/api/productos/1/extra", "/api/auth/login/x"])
def test_a_path_that_is_not_there_with_a_slash_either_is_a_404(sqlite_app, path):
    response = sqlite_app.test_client().get(path)
    assert response.status_code == 404
    assert response.is_json and response.json["code"] == 404


def test_options_answers_json_with_the_allowed_methods(client):
    """Flask's own OPTIONS answer was an empty text/html body; DRF's is JSON too."""
    response = client.options("/api/productos/")
    assert (response.status_code, response.mimetype) == (200, "application/json")
    assert response.json == {"allowed_methods": ["GET", "HEAD", "OPTIONS"]}
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
