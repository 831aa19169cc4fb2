"""/metrics: request, cache and pool figures, and who may read them."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from electro_isla import create_app
from electro_isla.cache import cache_manager
from electro_isla.config import TestConfig
from electro_isla.config_values import Misconfigured
from electro_isla.extensions import db
from electro_isla.metrics import client_allowed, parse_allow
from electro_isla_testing.servers import free_port
from tests.conftest import sqlite_settings


def sample(metric: str, /, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def _sqlite_app(tmp_path, **overrides):
    settings = sqlite_settings(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://", **overrides)
    app = create_app(TestConfig, settings)

    @app.get("/_probe/item/<int:n>")
    def probe(n: int):  # noqa: ANN202
        return {"n": n}

    return app


def test_requests_are_labelled_by_url_rule_method_and_status(tmp_path):
    client = _sqlite_app(tmp_path).test_client()
    rule = {"endpoint": "/_probe/item/<int:n>", "method": "GET"}
    before = sample("electro_isla_http_requests_total", status="200", **rule)
    before_latency = sample("electro_isla_http_request_duration_seconds_count", **rule)
    unmatched = sample(
        "electro_isla_http_requests_total", endpoint="<unmatched>", method="GET", status="404"
    )
    for n in range(5):
        assert client.get(f"/_probe/item/{n}").status_code == 200
    client.get("/no/such/path/123")
    assert sample("electro_isla_http_requests_total", status="200", **rule) == before + 5
    assert sample("electro_isla_http_request_duration_seconds_count", **rule) == before_latency + 5
    assert (
        sample(
            "electro_isla_http_requests_total", endpoint="<unmatched>", method="GET", status="404"
        )
        == unmatched + 1
    )
    # Raw paths never become labels: that would be one time series per id.
    text = client.get("/metrics").get_data(as_text=True)
    assert "/_probe/item/3" not in text
    assert 'endpoint="/_probe/item/<int:n>"' in text


def test_metrics_endpoint_is_prometheus_text(tmp_path):
    client = _sqlite_app(tmp_path).test_client()
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {
        "electro_isla_http_requests",
        "electro_isla_http_request_duration_seconds",
        "electro_isla_cache_hits",
        "electro_isla_db_pool_checked_out",
    } <= names


def test_cache_events_are_counted_by_name_from_the_signals(app, db):
    def fetch():
        return {"nombre": "Radio"}

    before = {
        kind: sample(f"electro_isla_cache_{kind}_total", name="producto")
        for kind in ("hits", "misses", "fetches", "invalidations")
    }
    cache_manager.get("producto", fetch, row=7)
    cache_manager.get("producto", fetch, row=7)
    cache_manager.get("producto", fetch, row=7)
    cache_manager.invalidate(rows=[("producto", 7)])
    assert sample("electro_isla_cache_misses_total", name="producto") == before["misses"] + 1
    assert sample("electro_isla_cache_fetches_total", name="producto") == before["fetches"] + 1
    assert sample("electro_isla_cache_hits_total", name="producto") == before["hits"] + 2
    assert (
        sample("electro_isla_cache_invalidations_total", name="producto")
        == before["invalidations"] + 1
    )
    assert sample("electro_isla_cache_fetch_duration_seconds_count", name="producto") >= 1


def test_cache_errors_and_bypasses_are_counted_when_redis_is_down(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    errors = sample("electro_isla_cache_errors_total", name="producto")
    bypasses = sample("electro_isla_cache_bypasses_total", name="producto")
    with app.app_context():
        assert cache_manager.get("producto", lambda: {"x": 1}, row=1) == {"x": 1}
    assert sample("electro_isla_cache_errors_total", name="producto") == errors + 1
    assert sample("electro_isla_cache_bypasses_total", name="producto") == bypasses + 1


def test_pool_gauge_follows_checked_out_connections(app):
    with app.app_context():
        base = sample("electro_isla_db_pool_checked_out")
        with db.engine.connect() as first, db.engine.connect() as second:
            assert first is not second
            assert sample("electro_isla_db_pool_checked_out") == base + 2
        assert sample("electro_isla_db_pool_checked_out") == base
        assert sample("electro_isla_db_pool_size") >= 1


def test_metrics_allow_limits_access_by_ip_or_cidr(tmp_path):
    client = _sqlite_app(tmp_path, METRICS_ALLOW="10.0.0.0/8, 192.168.1.7").test_client()
    denied = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert denied.status_code == 403
    assert denied.json["code"] == 403 and denied.json["message"]
    for allowed in ("10.20.30.40", "192.168.1.7"):
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": allowed})
        assert response.status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.168.1.8"}).status_code == 403
    # Only /metrics is restricted.
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_empty_metrics_allow_lets_everyone_in(tmp_path):
    client = _sqlite_app(tmp_path, METRICS_ALLOW="").test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


def test_a_typo_in_metrics_allow_stops_the_app_from_starting(tmp_path):
    with pytest.raises(Misconfigured, match="METRICS_ALLOW"):
        _sqlite_app(tmp_path, METRICS_ALLOW="10.0.0.0/8,localhost")


@pytest.mark.parametrize(
    ("addr", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:10.1.1.1", True),
        ("11.0.0.1", False),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_client_allowed(addr, allowed):
    assert client_allowed(addr, parse_allow("127.0.0.1,::1,10.0.0.0/8")) is allowed
