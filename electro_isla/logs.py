"""Application logging: a request id on every line, optional JSON, no secrets.

One handler on the root logger formats everything the process logs (the app,
SQLAlchemy, redis-py...), so redaction and the JSON format cannot be skipped by
a library that logs on its own logger. gunicorn's own loggers get the same
filter from gunicorn.conf.py.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only when it is short and cannot break a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")

REDACTED = "[REDACTED]"
_SECRET_KEY_NAMES = r"[\w-]*(?:password|passwd|secret|token|authorization|cookie|api[_-]?key)[\w-]*"  # noqa: S105  (key names, not a secret)
# Not "api" alone: every access line holds "/api/", and would run the costliest regex.
_SECRET_KEY_WORDS = (
    *("password", "passwd", "secret", "token", "authorization", "cookie"),
    *("apikey", "api_key", "api-key"),
)
# Each pattern with the lowercase words one of which any text it matches contains: a
# line with none of them (most access and cache.log lines) skips that regex; a 5 %
# share of a live worker's CPU went to these regexes (bench/live.py, py-spy --gil).
_REDACTIONS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # "Authorization: Bearer x", bare "Bearer x" anywhere.
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {REDACTED}", ("bearer",)),
    # key=value, key: value, "key": "value", 'key': 'value' (JSON, dict reprs, query
    # strings, cookies): password, password_hash, refreshToken, access_token, SECRET_KEY...
    (
        re.compile(
            rf"""(?ix)
            (?P<key>["']?{_SECRET_KEY_NAMES}["']?\s*[:=]\s*)
            (?P<value>"[^"]*"|'[^']*'|(?!\[REDACTED\]|bearer\s)[^\s,;&}}\]]+)
            """
        ),
        rf"\g<key>{REDACTED}",
        _SECRET_KEY_WORDS,
    ),
    # A JWT on its own (e.g. inside a URL or an exception message).
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED, ("eyj",)),
    # Password hashes in SQL parameter dumps (werkzeug's scrypt/pbkdf2, argon2, bcrypt).
    (
        re.compile(r"\b(?:scrypt|pbkdf2:[\w]+|argon2\w*)[:$][^\s'\",)]+"),
        REDACTED,
        ("scrypt", "pbkdf2", "argon2"),
    ),
    (re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"), REDACTED, ("$2",)),
)


def redact(text: str) -> str:
    """Mask tokens, passwords and credentials in free text."""
    # Only ASCII lowercases like the regexes' IGNORECASE (no "ſecret" for "secret").
    ascii_only = text.isascii()
    lowered = text.lower()
    for pattern, replacement, words in _REDACTIONS:
        if not ascii_only or any(word in lowered for word in words):
            text = pattern.sub(replacement, text)
            lowered = text.lower()
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's final message (and traceback) with secrets masked.

    The record is rendered here, once, so `%`-arguments such as a request's
    headers are masked as well as literal text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  a broken format string is logged as is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# gunicorn's name for the X-Request-ID response header among an access line's atoms.
ACCESS_ID_ATOM = "{x-request-id}o"


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id`: the current request's id, or "-" outside requests.

    gunicorn's access line is written after the request, outside it: its id is the
    response's X-Request-ID among the line's atoms (a JSON line said "-" there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else {}
        record.request_id = current_request_id() or atoms.get(ACCESS_ID_ATOM) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (Loki, ELK, CloudWatch) parse."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format.lower() == "json" else logging.Formatter(TEXT_FORMAT)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time (test capture, gunicorn's redirect)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return None


def _incoming_request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _install_root_handler(log_format: str) -> logging.Handler:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        handler.addFilter(RequestIdFilter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    # One process, one format: the last app configured wins (tests build many apps).
    handler.setFormatter(make_formatter(log_format))
    return handler


def register_logging(app: Flask) -> None:
    """Request ids in and out, one formatted handler, secrets masked."""
    _install_root_handler(app.config.get("LOG_FORMAT", "text"))
    level = str(app.config.get("LOG_LEVEL", "INFO")).upper()
    logging.getLogger("electro_isla").setLevel(level)
    app.logger.removeHandler(default_handler)

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = _incoming_request_id()

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
