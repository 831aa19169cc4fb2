"""Configuration: defaults in classes, overridden by the environment at app creation.

The environment is read when `create_app` runs, not at import, so tests and the
CLI can set variables before building an app.
"""

from __future__ import annotations

import os
import secrets
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_DIR / "instance"


class Config:
    """Defaults for the embedded laptop setup: SQLite file and in-process cache."""

    ENV_NAME = "development"
    TESTING = False

    SQLALCHEMY_DATABASE_URI = f"sqlite:///{INSTANCE_DIR / 'electro_isla.db'}"
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
    # Absolute, so `flask db upgrade` works from any working directory.
    MIGRATIONS_DIR = str(PROJECT_DIR / "migrations")
    REDIS_URL: str | None = None
    # Flask-Caching's Redis flavours: standalone | sentinel | cluster.
    REDIS_MODE = "standalone"
    REDIS_SENTINELS = ""
    REDIS_SENTINEL_MASTER = "mymaster"
    REDIS_SENTINEL_PASSWORD: str | None = None
    REDIS_PASSWORD: str | None = None
    REDIS_DB = 0
    # Short timeouts: a hung Redis must cost milliseconds per request, not seconds.
    REDIS_SOCKET_TIMEOUT = 0.25
    CACHE_CIRCUIT_RESET_SECONDS = 2.0
    CACHE_KEY_PREFIX = "electro_isla"
    CACHE_ENABLED = True
    CACHE_LOCK_TIMEOUT = 30.0
    # A bump counts once this many replicas have it (WAIT); None: 1 with sentinel, else 0.
    CACHE_WAIT_REPLICAS: int | None = None
    CACHE_WAIT_TIMEOUT_MS = 200
    # How often a worker looks for invalidations another host could not apply.
    CACHE_PENDING_CHECK_MS = 250
    TIMEZONE = "UTC"
    LOG_DIR = "logs"
    LOG_FORMAT = "text"
    LOG_LEVEL = "INFO"

    SECRET_KEY: str | None = None
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    REFRESH_TOKEN_EXPIRES = timedelta(hours=2)
    LOGIN_MAX_FAILURES = 5
    LOGIN_WINDOW_SECONDS = 60

    MAX_CONTENT_LENGTH = 1024 * 1024
    METRICS_ALLOW = ""
    # How many reverse proxies in front set X-Forwarded-For (0: trust the TCP peer).
    TRUSTED_PROXIES = 0

    API_TITLE = "Electro Isla API"
    API_VERSION = "1.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs/"
    OPENAPI_SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    }

    # Environment variable -> (config key, type). CACHE_TTL_<NAME> is handled apart.
    ENV_VARS: dict[str, tuple[str, type]] = {
        "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
        "REDIS_URL": ("REDIS_URL", str),
        "REDIS_MODE": ("REDIS_MODE", str),
        "REDIS_SENTINELS": ("REDIS_SENTINELS", str),
        "REDIS_SENTINEL_MASTER": ("REDIS_SENTINEL_MASTER", str),
        "REDIS_SENTINEL_PASSWORD": ("REDIS_SENTINEL_PASSWORD", str),
        "REDIS_PASSWORD": ("REDIS_PASSWORD", str),
        "REDIS_DB": ("REDIS_DB", int),
        "CACHE_WAIT_REPLICAS": ("CACHE_WAIT_REPLICAS", int),
        "CACHE_WAIT_TIMEOUT_MS": ("CACHE_WAIT_TIMEOUT_MS", int),
        "CACHE_PENDING_CHECK_MS": ("CACHE_PENDING_CHECK_MS", int),
        "REDIS_SOCKET_TIMEOUT": ("REDIS_SOCKET_TIMEOUT", float),
        "CACHE_CIRCUIT_RESET_SECONDS": ("CACHE_CIRCUIT_RESET_SECONDS", float),
        "CACHE_KEY_PREFIX": ("CACHE_KEY_PREFIX", str),
        "CACHE_ENABLED": ("CACHE_ENABLED", bool),
        "SECRET_KEY": ("SECRET_KEY", str),
        "TIMEZONE": ("TIMEZONE", str),
        "LOG_DIR": ("LOG_DIR", str),
        "LOG_FORMAT": ("LOG_FORMAT", str),
        "LOG_LEVEL": ("LOG_LEVEL", str),
        "METRICS_ALLOW": ("METRICS_ALLOW", str),
        "TRUSTED_PROXIES": ("TRUSTED_PROXIES", int),
    }

    @classmethod
    def finalize(cls, config: dict[str, Any]) -> None:
        """Last checks once environment and overrides are applied."""
        uri = config["SQLALCHEMY_DATABASE_URI"]
        if uri.startswith("sqlite:///") and uri != "sqlite://":
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if not config.get("SECRET_KEY"):
            warnings.warn(
                "SECRET_KEY is not set: using a random key; tokens die with the process",
                stacklevel=2,
            )
            config["SECRET_KEY"] = secrets.token_urlsafe(48)


class DevConfig(Config):
    pass


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-secret-key-that-is-long-enough-for-hs256"  # noqa: S105
    SQLALCHEMY_DATABASE_URI = "sqlite://"


class ProdConfig(Config):
    ENV_NAME = "production"
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
    }

    @classmethod
    def finalize(cls, config: dict[str, Any]) -> None:
        missing = [n for n in ("SECRET_KEY", "DATABASE_URL") if not os.environ.get(n)]
        if missing:
            raise RuntimeError(f"production refuses to start without {', '.join(missing)}")
        super().finalize(config)


CONFIGS: dict[str, type[Config]] = {
    "development": DevConfig,
    "testing": TestConfig,
    "production": ProdConfig,
}


def config_class_from_env() -> type[Config]:
    env = (os.environ.get("APP_ENV") or os.environ.get("FLASK_ENV") or "development").lower()
    return CONFIGS.get(env, DevConfig)


def _parse(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.strip().lower() not in ("0", "false", "no", "off", "")
    return kind(raw)


def load_environment(config: dict[str, Any], environ: dict[str, str] | None = None) -> None:
    """Apply the documented environment variables on top of a config class's defaults."""
    environ = dict(os.environ if environ is None else environ)
    for var, (key, kind) in Config.ENV_VARS.items():
        raw = environ.get(var)
        if raw not in (None, ""):
            config[key] = _parse(raw, kind)
    config["CACHE_TTL_OVERRIDES"] = {
        var.removeprefix("CACHE_TTL_").lower(): int(raw)
        for var, raw in environ.items()
        if var.startswith("CACHE_TTL_") and raw.strip()
    }
