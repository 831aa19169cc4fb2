"""Request ids, JSON log lines and secret redaction, through real requests."""

from __future__ import annotations

import json
import logging
import re

import pytest
from flask import Flask, current_app, request

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla.logs import REDACTED, redact
from tests.conftest import sqlite_settings

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNlY3JldA"
PASSWORD = "hunter2-super-secreto"
REFRESH = "opaque-refresh-abcdef0123456789"
SECRETS = (TOKEN, PASSWORD, REFRESH, "c2lnbmF0dXJlLXNlY3JldA")


def _app(tmp_path, **overrides) -> Flask:
    settings = sqlite_settings(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://", **overrides)
    app = create_app(TestConfig, settings)

    @app.post("/_probe/log")
    def log_probe():  # noqa: ANN202
        body = request.get_json()
        current_app.logger.info("login attempt payload=%s", body)
        current_app.logger.info("headers %s", dict(request.headers))
        logging.getLogger("electro_isla.probe").warning(
            "Authorization: %s", request.headers["Authorization"]
        )
        return {"ok": True}

    @app.get("/_probe/boom")
    def boom():  # noqa: ANN202
        raise RuntimeError(f"connect failed: password={PASSWORD} token={TOKEN}")

    return app


def _headers(request_id: str | None = None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Cookie": f"refreshToken={REFRESH}; theme=dark",
    }
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def test_request_id_is_echoed_when_sane_and_generated_otherwise(tmp_path):
    client = _app(tmp_path).test_client()
    assert client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"}).headers[
        "X-Request-ID"
    ] == ("req-42.a:b")
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["X-Request-ID"] != generated
    for insane in ("x" * 200, "has space", 'quote"d', "-leading-dash", "semi;colon"):
        answered = client.get("/healthz", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
        assert answered != insane
        assert re.fullmatch(r"[0-9a-f]{32}", answered)


def test_error_responses_carry_the_request_id_too(tmp_path):
    client = _app(tmp_path).test_client()
    response = client.get("/no/such/route", headers={"X-Request-ID": "lost-1"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "lost-1"


def test_text_log_lines_carry_the_request_id_and_no_secret(tmp_path, capsys):
    client = _app(tmp_path).test_client()
    response = client.post(
        "/_probe/log",
        json={"username": "ana", "password": PASSWORD, "refreshToken": REFRESH},
        headers=_headers("trace-text-1"),
    )
    assert response.status_code == 200
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "trace-text-1" in line]
    assert len(lines) == 3, err
    assert all("[trace-text-1]" in line for line in lines)
    assert "'username': 'ana'" in err  # the rest of the payload is still there
    assert REDACTED in err
    for secret in SECRETS:
        assert secret not in err


def test_json_format_is_one_object_per_line_without_secrets(tmp_path, capsys):
    client = _app(tmp_path, LOG_FORMAT="json").test_client()
    client.post(
        "/_probe/log",
        json={"username": "ana", "password": PASSWORD},
        headers=_headers("trace-json-1"),
    )
    err = capsys.readouterr().err
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    mine = [e for e in entries if e.get("request_id") == "trace-json-1"]
    assert len(mine) == 3
    assert {e["logger"] for e in mine} == {"electro_isla", "electro_isla.probe"}
    assert all({"ts", "level", "pid", "message"} <= e.keys() for e in mine)
    for secret in SECRETS:
        assert secret not in err


def test_unhandled_error_traceback_is_logged_redacted(tmp_path, capsys):
    # TESTING re-raises in the test client; production turns it into the 500 envelope.
    client = _app(tmp_path, LOG_FORMAT="json", PROPAGATE_EXCEPTIONS=False).test_client()
    response = client.get("/_probe/boom", headers={"X-Request-ID": "trace-boom"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "trace-boom"
    err = capsys.readouterr().err
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    failures = [e for e in entries if e["request_id"] == "trace-boom" and e["level"] == "ERROR"]
    assert failures and "RuntimeError" in failures[0]["exc_info"]
    assert "password=[REDACTED]" in failures[0]["exc_info"]
    for secret in SECRETS:
        assert secret not in err


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        (f"authorization=bearer {TOKEN}", TOKEN),
        (f'{{"password": "{PASSWORD}"}}', PASSWORD),
        (f"{{'new_password': '{PASSWORD}'}}", PASSWORD),
        (f"Cookie: refreshToken={REFRESH}; theme=dark", REFRESH),
        (f"GET /api/x/?access_token={TOKEN}&page=2", TOKEN),
        (f"jwt {TOKEN} rejected", TOKEN),
        ("[parameters: ('ana', 'scrypt:32768:8:1$c2FsdA$aGFzaA')]", "aGFzaA"),
        (f"SECRET_KEY={PASSWORD}", PASSWORD),
        (f"AUTHORIZATION: BEARER {TOKEN}", TOKEN),
        (f"ApiKey: {PASSWORD}", PASSWORD),
        (f"X-API-Key: {PASSWORD}", PASSWORD),
        (f"GET /api/x/?api_key={PASSWORD} 200", PASSWORD),
        ("bcrypt $2b$12$" + "a" * 53, "a" * 53),
        # Not ASCII: IGNORECASE also takes "ſ" for "s", which str.lower() does not.
        (f"ſecret={PASSWORD} – €", PASSWORD),
    ],
)
def test_redact_masks_each_pattern(text, gone):
    assert gone not in redact(text)
    assert REDACTED in redact(text)


def test_redact_leaves_ordinary_text_alone():
    text = "GET /api/productos/?page=2&categoria=otros 200 total=3 usuario=ana"
    assert redact(text) == text


def test_log_level_comes_from_configuration(tmp_path, capsys):
    client = _app(tmp_path, LOG_LEVEL="WARNING").test_client()
    client.post("/_probe/log", json={"username": "ana"}, headers=_headers("trace-level"))
    lines = [line for line in capsys.readouterr().err.splitlines() if "trace-level" in line]
    # Only the WARNING survives; the two INFO lines are below the level.
    assert len(lines) == 1 and "WARNING" in lines[0]
    _app(tmp_path)  # back to the default for the tests that follow
