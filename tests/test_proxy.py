"""TRUSTED_PROXIES: X-Forwarded-For counts only when the TCP peer is a configured proxy."""

import pytest
import requests

from electro_isla.config_values import Misconfigured
from electro_isla_testing.gunicorn import GunicornServer

PROXY = "10.0.0.2"
STRANGER = "203.0.113.5"


def _fail_login(client, forwarded_for, peer=PROXY):
    # A different unknown username each time, so only the per-IP limit can bite.
    return client.post(
        "/api/auth/login/",
        json={"username": f"nadie{forwarded_for}", "password": "incorrecta"},
        headers={"X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": peer},
    )


def _metrics(client, peer, forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": peer})


@pytest.mark.parametrize(
    ("trusted", "blocked_after"), [("", True), (PROXY, False), ("10.0.0.0/8", False)]
)
def test_forwarded_for_is_trusted_only_from_configured_proxies(make_app, trusted, blocked_after):
    client = make_app(TRUSTED_PROXIES=trusted).test_client()
    # Five failures from five different client addresses, as the proxy relays them.
    for n in range(5):
        assert _fail_login(client, f"198.51.100.{n}").status_code == 401
    # With no trusted proxy every request comes from the proxy itself: one IP, blocked.
    response = _fail_login(client, "198.51.100.99")
    assert (response.status_code == 429) is blocked_after


def test_a_client_that_is_not_a_proxy_cannot_pick_its_address(make_app):
    app = make_app(TRUSTED_PROXIES=PROXY, METRICS_ALLOW="127.0.0.1")
    client = app.test_client()
    # Claiming to be loopback does not open /metrics...
    assert _metrics(client, STRANGER, "127.0.0.1").status_code == 403
    # ...nor does a new claimed address per attempt dodge the per-IP login limit.
    for n in range(5):
        assert _fail_login(client, f"198.51.100.{n}", peer=STRANGER).status_code == 401
    assert _fail_login(client, "198.51.100.99", peer=STRANGER).status_code == 429


def test_the_configured_proxy_speaks_for_its_clients(make_app):
    app = make_app(TRUSTED_PROXIES=PROXY, METRICS_ALLOW="127.0.0.1")
    client = app.test_client()
    assert _metrics(client, PROXY, "127.0.0.1").status_code == 200
    # The proxy itself is not allowed: only the client it names counts.
    assert _metrics(client, PROXY).status_code == 403
    assert _metrics(client, PROXY, STRANGER).status_code == 403
    # A client-supplied entry to the left of what the proxy appended is ignored.
    assert _metrics(client, PROXY, f"127.0.0.1, {STRANGER}").status_code == 403
    # A chain of trusted proxies is walked to the first hop that is not one.
    chained = make_app(TRUSTED_PROXIES="10.0.0.0/8", METRICS_ALLOW="127.0.0.1").test_client()
    assert _metrics(chained, PROXY, "127.0.0.1, 10.0.0.7").status_code == 200
    assert _metrics(chained, PROXY, "127.0.0.1, 203.0.113.9, 10.0.0.7").status_code == 403


@pytest.mark.parametrize("value", ["1", "2", "10.0.0.2,not-an-ip"])
def test_a_hop_count_or_a_typo_stops_the_app_at_start(make_app, value):
    with pytest.raises(Misconfigured, match="TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES=value)


def test_gunicorn_leaves_forwarded_headers_to_the_app(_schema):
    """gunicorn believes X-Forwarded-Proto (and -Ssl, -Protocol) from 127.0.0.1 by
    default and sets the scheme before the app runs: with TRUSTED_PROXIES empty, a
    local client still turned every absolute URL into https (a helper's probe)."""
    server = GunicornServer(_schema, None, workers=1, threads=2, use_project_config=True).start()
    try:
        for header, value in [
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Ssl", "on"),
            ("X-Forwarded-Protocol", "ssl"),
        ]:
            r = requests.get(
                f"{server.url}/api/productos",  # no slash: redirected to an absolute URL
                headers={header: value},
                allow_redirects=False,
                timeout=10,
            )
            assert r.status_code == 308, r.text
            assert r.headers["Location"].startswith("http://"), (header, r.headers["Location"])
    finally:
        server.stop()


def test_trusted_hosts_refuse_another_host_with_a_json_400(make_sqlite_app, monkeypatch):
    """Django's ALLOWED_HOSTS: links and redirects are built from the Host header, so a
    client could have them name any site (a probe saw `next: http://evil.example/…`)."""
    monkeypatch.setenv("TRUSTED_HOSTS", "api.tienda.example, .Tienda.example")
    app = make_sqlite_app()
    assert app.config["TRUSTED_HOSTS"] == ["api.tienda.example", ".tienda.example"]
    client = app.test_client()
    for host in (
        "api.tienda.example",
        "www.tienda.example:8443",
        "tienda.example",
        "API.Tienda.Example",
    ):
        assert client.get("/api/productos/", headers={"Host": host}).status_code == 200, host
    bad = client.get("/api/productos/", headers={"Host": "evil.example"})
    assert bad.status_code == 400
    assert bad.json["code"] == 400 and "message" in bad.json
    moved = client.get("/api/productos", headers={"Host": "evil.example"})
    assert moved.status_code == 400 and "Location" not in moved.headers


def test_without_trusted_hosts_any_host_is_answered(make_sqlite_app, monkeypatch):
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    client = make_sqlite_app().test_client()
    assert client.get("/api/productos/", headers={"Host": "evil.example"}).status_code == 200


@pytest.mark.parametrize(
    "host", ["a b", "", "evil.example:99999", "[::1", "ex<am>ple", "x:0", "api_1:8000"]
)
def test_a_malformed_host_is_a_json_400_whatever_trusted_hosts_says(
    make_sqlite_app, monkeypatch, host
):
    """Django's get_host() refuses these even with ALLOWED_HOSTS = ['*']; here they made
    every link and redirect `http:///…` (a probe's `next` and `Location`)."""
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    client = make_sqlite_app().test_client()
    for path in ("/api/productos/?page_size=1", "/api/productos"):
        response = client.get(path, environ_overrides={"HTTP_HOST": host})
        assert response.status_code == 400, (host, path, response.status_code)
        assert response.json["code"] == 400 and response.json["message"]
        assert "Location" not in response.headers


@pytest.mark.parametrize(
    "host",
    ["good.example:8080", "[::1]:8000", "127.0.0.1", "shop.example."],
)
def test_a_well_formed_host_names_the_links(make_sqlite_app, monkeypatch, host):
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    client = make_sqlite_app().test_client()
    moved = client.get("/api/productos", environ_overrides={"HTTP_HOST": host})
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"http://{host}/api/productos/"
