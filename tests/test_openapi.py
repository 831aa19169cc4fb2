"""The OpenAPI document lists every endpoint of the contract (API.md); its UI works offline."""

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import jsonschema_rs
import pytest

from electro_isla.auth.schemas import USERNAME_JSON_PATTERN, USERNAME_PATTERN

CONTRACT = {
    "/api/auth/register/": {"post"},
    "/api/auth/login/": {"post"},
    "/api/auth/refresh/": {"post"},
    "/api/auth/logout/": {"post"},
    "/api/productos/": {"get"},
    "/api/productos/{producto_id}/": {"get"},
    "/api/admin/productos/": {"get", "post"},
    "/api/admin/productos/{producto_id}/": {"get", "patch", "delete"},
    "/api/pedidos/": {"post"},
    "/api/mis-pedidos/": {"get"},
    "/api/admin/pedidos/": {"get"},
    "/api/admin/pedidos/{pedido_id}/": {"get", "patch"},
    "/api/admin/pedidos/{pedido_id}/asignar_mensajero/": {"post"},
    "/api/admin/users/": {"get"},
    "/api/admin/users/{usuario_id}/": {"patch"},
    "/api/perfil/": {"get", "patch"},
    "/api/admin/estadisticas/ventas/": {"get"},
    "/api/admin/estadisticas/usuarios/": {"get"},
    "/api/admin/estadisticas/productos/": {"get"},
    "/api/admin/estadisticas/reporte/": {"get"},
    "/api/admin/cache/stats/": {"get"},
    "/api/admin/cache/clear/": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}


def test_every_contract_endpoint_is_documented(sqlite_app):
    paths = sqlite_app.test_client().get("/api/openapi.json").get_json()["paths"]
    missing = {
        path: sorted(methods - set(paths.get(path, {})))
        for path, methods in CONTRACT.items()
        if methods - set(paths.get(path, {}))
    }
    assert missing == {}


def test_docs_ui_is_served(sqlite_app):
    response = sqlite_app.test_client().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


class _Assets(HTMLParser):
    """Every URL the page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name, tag) in {("src", "script"), ("href", "link"), ("src", "img")}:
                self.urls.append(value)


def test_docs_ui_loads_only_same_origin_assets(sqlite_app):
    """No CDN: on a machine without internet the page still renders."""
    client = sqlite_app.test_client()
    page = client.get("/api/docs/").get_data(as_text=True)
    parser = _Assets()
    parser.feed(page)
    assert len(parser.urls) >= 3, parser.urls  # swagger-ui.css, its bundle and preset
    assert not re.search(r"https?://", page), "the page names an absolute URL"
    expected = {".css": "text/css", ".js": "javascript"}
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        response = client.get(parts.path)
        assert response.status_code == 200, url
        suffix = parts.path[parts.path.rfind(".") :]
        assert expected[suffix] in response.content_type, (url, response.content_type)
        assert len(response.data) > 1000, url


def test_docs_ui_asks_no_outside_validator(sqlite_app):
    """Swagger UI's default validatorUrl (validator.swagger.io) loads a badge from the
    internet on any host but localhost (a new user's reading of the bundle)."""
    page = sqlite_app.test_client().get("/api/docs/").get_data(as_text=True)
    assert re.search(r'validatorUrl"?\s*:\s*null', page), page[-800:]


STATISTICS = ("ventas", "usuarios", "productos", "reporte")


def _resolve(spec: dict, item: dict) -> dict:
    """A `$ref` of the document, followed (components are referred to by ref)."""
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = spec["components"][kind][name]
    return item


def test_live_statistics_headers_are_documented(sqlite_app):
    """API.md "Live statistics": Prefer: wait=N in, Preference-Applied out (200 and 304),
    Last-Event-ID into the stream and Retry-After on its 429."""
    spec = sqlite_app.test_client().get("/api/openapi.json").get_json()
    for stat in STATISTICS:
        get = spec["paths"][f"/api/admin/estadisticas/{stat}/"]["get"]
        headers_in = {_resolve(spec, p)["name"] for p in get.get("parameters", [])}
        assert {"If-None-Match", "Prefer"} <= headers_in, stat
        for code in ("200", "304"):
            response = _resolve(spec, get["responses"][code])
            assert "Preference-Applied" in response.get("headers", {}), (stat, code)
        assert "ETag" in _resolve(spec, get["responses"]["200"])["headers"]
    stream = spec["paths"]["/api/admin/estadisticas/stream/"]["get"]
    assert "Last-Event-ID" in {_resolve(spec, p)["name"] for p in stream.get("parameters", [])}
    assert "Retry-After" in stream["responses"]["429"].get("headers", {})


def _patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_published_pattern_reads_alike_in_every_regex_dialect(sqlite_app):
    """Clients validate with JSON Schema's regular expressions (ECMA-262, jsonschema-rs
    here) or with Python's `re` (python-jsonschema, openapi-core): the username's
    `\\Z` was no regex to the first ("is not a regex"), and `\\p{L}` none to the second
    ("bad escape"), so one kind of client or the other could not use the document."""
    document = sqlite_app.test_client().get("/api/openapi.json").get_json()
    patterns = sorted(set(_patterns(document)))
    refused = {}
    for pattern in patterns:
        try:
            jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
            re.compile(pattern)
        except (jsonschema_rs.ValidationError, re.error) as error:
            refused[pattern] = str(error).splitlines()[0]
    assert refused == {}
    assert USERNAME_JSON_PATTERN in patterns


@pytest.mark.parametrize(
    ("username", "server", "published"),
    [
        ("Ñandú_9", True, True),
        ("ΟΔΟΣ", True, True),
        ("a.b+c-d", True, True),
        ("١٢٣", True, True),
        ("a b", False, False),
        ("a@b", False, False),
        ("a/b", False, False),
        ("", False, False),
        ("a€b", False, True),  # beyond ASCII the description says the rest
    ],
)
def test_the_published_username_pattern_admits_every_name_the_server_does(
    username, server, published
):
    rs = jsonschema_rs.validator_for({"type": "string", "pattern": USERNAME_JSON_PATTERN})
    assert rs.is_valid(username) is published
    assert bool(re.search(USERNAME_JSON_PATTERN, username)) is published
    assert bool(re.match(USERNAME_PATTERN, username)) is server
