"""cache.log tells when an outage starts, that it goes on (without a flood) and when it ends.

A Redis server the test owns is killed under two app instances serving an
authenticated, cached endpoint: the first component to meet the failure there
is the token-revocation check, not a cache lookup.
"""

from __future__ import annotations

import logging
import re
import time

from tests.helpers import user_with_role

RESET = 0.5


def lines_of(log_path, level: str) -> list[str]:
    text = log_path.read_text() if log_path.exists() else ""
    return [line for line in text.splitlines() if f" {level} " in line]


def test_outage_writes_one_error_line_per_interval_and_one_on_recovery(
    make_app, own_redis, tmp_path, caplog
):
    # The app's own log (standard error) gets the start and the end too: cache.log is
    # a file in LOG_DIR, which `docker logs` never showed.
    outages = logging.getLogger("electro_isla.shared_store")
    settings = {
        "REDIS_URL": own_redis.url,
        "REDIS_SOCKET_TIMEOUT": 0.2,
        "CACHE_CIRCUIT_RESET_SECONDS": RESET,
        "CACHE_PENDING_DIR": str(tmp_path / "pending"),
        "LOG_DIR": str(tmp_path / "logs"),
    }
    apps = [make_app(**settings), make_app(**settings)]
    log_path = tmp_path / "logs" / "cache.log"
    _, headers = user_with_role(apps[0], "cliente")
    clients = [a.test_client() for a in apps]
    for c in clients:
        assert c.get("/api/perfil/", headers=headers).status_code == 200
    assert lines_of(log_path, "ERROR") == []

    own_redis.kill()
    started = time.monotonic()
    requests = 0
    # At least 4 intervals and 60 requests (a loaded machine may need longer for them):
    # a flood would show as far more lines than intervals.
    while time.monotonic() - started < 4 * RESET or requests < 60:
        for c in clients:
            response = c.get("/api/perfil/", headers=headers)
            assert response.status_code == 200
            requests += 1
        time.sleep(0.02)
    elapsed = time.monotonic() - started

    errors = lines_of(log_path, "ERROR")
    assert errors, "the outage's start must be logged at ERROR"
    started_lines = [r for r in caplog.records if r.name == outages.name]
    assert [r.levelname for r in started_lines] == ["ERROR"] * len(apps), started_lines
    assert "Redis unavailable (ConnectionError" in started_lines[0].getMessage()
    first = errors[0]
    # Operation, key and the exception, on the first line.
    assert "revocation check" in first
    assert ":auth:revoked" in first
    assert "ConnectionError" in first
    assert "circuit open" in first
    # One line opening it per app, then at most one per interval and app: no flood.
    assert len(errors) <= len(apps) * (elapsed / RESET + 2)

    own_redis.restart()
    time.sleep(RESET * 1.2)
    for c in clients:
        assert c.get("/api/perfil/", headers=headers).status_code == 200
    recovered = [line for line in lines_of(log_path, "INFO") if "RECOVERED" in line]
    assert len(recovered) == len(apps)
    assert re.search(r"after \d+\.\ds", recovered[0])
    ended = [r for r in caplog.records if r.name == outages.name][len(started_lines) :]
    assert [r.levelname for r in ended] == ["WARNING"] * len(apps), ended

    before = len(lines_of(log_path, "ERROR"))
    for c in clients:
        assert c.get("/api/perfil/", headers=headers).status_code == 200
    assert len(lines_of(log_path, "ERROR")) == before
