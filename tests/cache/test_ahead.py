"""Lookups asked ahead (cache/ahead.py): the token check, the role and a statistic in one
round trip, with a revoked token and a demoted usuario still refused at once."""

from __future__ import annotations

import pytest

from electro_isla.estadisticas import registro
from electro_isla.estadisticas.registro import ESTADISTICAS
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario
from tests.cache.support import counting_round_trips, raw_redis
from tests.helpers import user_with_role

URLS = [f"/api/admin/estadisticas/{nombre}/" for nombre in ESTADISTICAS]


def set_rol(app, uid: int, rol: str) -> None:  # noqa: ANN001
    """Through the app's session: the commit bumps the usuario's entries."""
    with app.app_context():
        db.session.get(Usuario, uid).rol = rol
        db.session.commit()


@pytest.mark.parametrize("url", URLS)
def test_a_statistics_hit_is_one_redis_round_trip(app, monkeypatch, url):
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    assert client.get(url, headers=admin).headers["X-Cache"] == "MISS"
    calls = counting_round_trips(app, monkeypatch)
    hit = client.get(url, headers=admin)
    assert hit.status_code == 200 and hit.headers["X-Cache"] == "HIT"
    # Was ZMSCORE (revocation), EVALSHA (acceso_usuario), EVALSHA (the statistic).
    assert calls == ["pipeline"]


def test_any_authenticated_request_checks_token_and_role_in_one_round_trip(app, monkeypatch):
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    assert client.get("/api/perfil/", headers=admin).status_code == 200
    calls = counting_round_trips(app, monkeypatch)
    assert client.get("/api/perfil/", headers=admin).status_code == 200
    assert calls == ["pipeline", "EVALSHA"]  # the check and the role; then the profile


def test_a_hit_builds_no_month_window(app, monkeypatch):
    """The key needs only the month's label; the 12-month window is a MISS's work."""
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    assert client.get(URLS[0], headers=admin).headers["X-Cache"] == "MISS"

    def window(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a HIT built the month window")

    monkeypatch.setattr(registro, "meses", window)
    assert client.get(URLS[0], headers=admin).headers["X-Cache"] == "HIT"


def test_a_demoted_admin_is_refused_at_once_with_everything_cached(app):
    uid, headers = user_with_role(app, "admin")
    client = app.test_client()
    for _ in range(2):  # the statistic and the role are both cached
        assert client.get(URLS[0], headers=headers).status_code == 200
    set_rol(app, uid, "cliente")
    refused = client.get(URLS[0], headers=headers)
    assert refused.status_code == 403 and "generado_en" not in refused.get_json()
    set_rol(app, uid, "admin")
    assert client.get(URLS[0], headers=headers).status_code == 200


def test_a_logged_out_token_is_refused_at_once_with_everything_cached(app):
    _, headers = user_with_role(app, "admin")
    client = app.test_client()
    for _ in range(2):
        assert client.get(URLS[0], headers=headers).status_code == 200
    assert client.post("/api/auth/logout/", headers=headers).status_code in (200, 204)
    refused = client.get(URLS[0], headers=headers)
    assert refused.status_code == 401 and refused.get_json()["code"] == 401


def test_a_lost_script_is_looked_up_by_the_read_itself(app, monkeypatch):
    """A server that lost the scripts (restart, SCRIPT FLUSH) fails the pipelined EVALSHA;
    the reads then look up as they always did (redis-py's Script reloads it)."""
    _, admin = user_with_role(app, "admin")
    client = app.test_client()
    first = client.get(URLS[0], headers=admin)
    raw_redis(app).script_flush()
    calls = counting_round_trips(app, monkeypatch)
    again = client.get(URLS[0], headers=admin)
    assert again.status_code == 200 and again.headers["X-Cache"] == "HIT"
    assert again.data == first.data
    assert calls[0] == "pipeline" and "EVALSHA" in calls[1:]
