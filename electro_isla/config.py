"""Configuration: defaults in classes, overridden by the environment at app creation.

The environment is read when `create_app` runs, not at import, so tests and the
CLI can set variables before building an app.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from electro_isla.config_values import Misconfigured, check_values

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_DIR / "instance"


MAX_ACCESS_TOKEN_SECONDS = 86_400


def host_names(raw: str) -> list[str] | None:
    """TRUSTED_HOSTS, Django's ALLOWED_HOSTS: comma-separated names (`.shop.example` for
    every subdomain); a request naming another Host is a 400. Empty or `*`: any host.

    An entry no Host header could match (a URL, an IPv6 address: werkzeug's check
    cuts entries at their first colon) stops the start instead of refusing everyone."""
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    if "*" in names:
        return None
    for name in names:
        if not re.fullmatch(r"\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", name):
            raise Misconfigured(
                f"TRUSTED_HOSTS: {name!r} is not a host name or IPv4 address (no scheme, port, "
                "path or IPv6 address; `*` for any host)"
            )
    return names or None


def seconds(raw: str) -> timedelta:
    """A duration given in whole seconds (ACCESS_TOKEN_SECONDS)."""
    return timedelta(seconds=int(raw))


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
    # How often each process asks the sentinels where the master is (0: only when
    # a connection opens, as plain redis-py): a warm pool must not keep reading an
    # old master that stays up after a failover (shared_store/sentinel.py).
    REDIS_SENTINEL_CHECK_MS = 500
    REDIS_PASSWORD: str | None = None
    REDIS_DB = 0
    # Short timeouts: a hung Redis must cost milliseconds per request, not seconds.
    REDIS_SOCKET_TIMEOUT = 0.25
    CACHE_CIRCUIT_RESET_SECONDS = 2.0
    CACHE_KEY_PREFIX = "electro_isla"
    CACHE_ENABLED = True
    CACHE_LOCK_TIMEOUT = 30.0
    # How long a request waits for another's fetch of the same cold entry before it
    # fetches itself: every fetch is milliseconds since the rollups, and a lock lost
    # in a Sentinel failover (taken on the new master, released on the old) would
    # otherwise hold every waiter for the whole CACHE_LOCK_TIMEOUT.
    CACHE_LOCK_WAIT_SECONDS = 0.75
    # A bump counts once this many replicas have it (WAIT); None: 1 with sentinel and
    # cluster (a failover must not drop a bump), 0 standalone. A Cluster without replicas: 0.
    CACHE_WAIT_REPLICAS: int | None = None
    CACHE_WAIT_TIMEOUT_MS = 200
    # How often a worker looks for invalidations another host could not apply.
    CACHE_PENDING_CHECK_MS = 250
    # Live statistics (electro_isla/live): the longest hold a `Prefer: wait` gets (capped
    # at 60), the gap under which a stream holds a statistic's change until that long
    # after the last change it sent (one event, the latest figures), and the held
    # requests plus streams one process takes (gunicorn.conf.py adds as many threads).
    LIVE_MAX_WAIT = 30
    LIVE_MIN_INTERVAL_MS = 200
    LIVE_MAX_WAITERS = 100
    LIVE_STREAMS_PER_USUARIO = 4
    # How often each process re-reads the statistics' generations whatever the
    # notifications say (a lost one then delays an update by this much at most).
    LIVE_RECHECK_MS = 500
    # A statistic read in a process this recently is refreshed there after each change
    # (at most once per LIVE_MIN_INTERVAL_MS), so polls find it stored; 0: only watched ones.
    LIVE_READ_REFRESH_SECONDS = 5.0
    # The statistics one change moved are fetched this many at once (1: in turn), so
    # a poll finds them stored sooner; each holds a database connection meanwhile.
    LIVE_FETCH_THREADS = 4
    LIVE_HEARTBEAT_SECONDS = 10.0
    # How often a stream re-checks its token and role (ends within this of a logout).
    LIVE_AUTH_CHECK_SECONDS = 2.0
    # Set by gunicorn.conf.py (GUNICORN_THREADS): ordinary requests one process serves at
    # once, the rest queue; 0 (outside gunicorn): no bound.
    LIVE_ORDINARY_THREADS = 0
    TIMEZONE = "UTC"
    LOG_DIR = "logs"
    LOG_FORMAT = "text"
    LOG_LEVEL = "INFO"

    SECRET_KEY: str | None = None
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    REFRESH_TOKEN_EXPIRES = timedelta(hours=2)
    LOGIN_MAX_FAILURES = 5
    LOGIN_WINDOW_SECONDS = 60
    # Accounts one IP may register per window (anonymous writes stay bounded).
    REGISTER_MAX_PER_IP = 10
    REGISTER_WINDOW_SECONDS = 3600

    MAX_CONTENT_LENGTH = 1024 * 1024
    # Who may read /metrics (IPs/CIDRs). Empty: everyone, outside production only;
    # production reads empty as loopback (PRODUCTION_METRICS_ALLOW).
    METRICS_ALLOW = ""
    # Addresses/CIDRs of the reverse proxies in front: X-Forwarded-* is believed only
    # when the TCP peer is one of them. Empty: the TCP peer is the client.
    TRUSTED_PROXIES = ""
    # Worker processes serving this app (gunicorn exports its effective count here).
    WEB_CONCURRENCY = 1

    API_TITLE = "Electro Isla API"
    API_VERSION = "1.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs/"
    # Served by the app (electro_isla/docs.py), so the docs work offline; and no badge
    # from validator.swagger.io, which Swagger UI loads on any host but localhost.
    OPENAPI_SWAGGER_UI_URL = "/api/docs/swagger-ui/"
    OPENAPI_SWAGGER_UI_CONFIG = {"validatorUrl": None}
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    }

    # Environment variable -> (config key, type). CACHE_TTL_<NAME> is handled apart.
    ENV_VARS: dict[str, tuple[str, Any]] = {
        "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
        "REDIS_URL": ("REDIS_URL", str),
        "REDIS_MODE": ("REDIS_MODE", str),
        "REDIS_SENTINELS": ("REDIS_SENTINELS", str),
        "REDIS_SENTINEL_MASTER": ("REDIS_SENTINEL_MASTER", str),
        "REDIS_SENTINEL_PASSWORD": ("REDIS_SENTINEL_PASSWORD", str),
        "REDIS_SENTINEL_CHECK_MS": ("REDIS_SENTINEL_CHECK_MS", int),
        "REDIS_PASSWORD": ("REDIS_PASSWORD", str),
        "REDIS_DB": ("REDIS_DB", int),
        "CACHE_WAIT_REPLICAS": ("CACHE_WAIT_REPLICAS", int),
        "CACHE_WAIT_TIMEOUT_MS": ("CACHE_WAIT_TIMEOUT_MS", int),
        "CACHE_PENDING_CHECK_MS": ("CACHE_PENDING_CHECK_MS", int),
        "REDIS_SOCKET_TIMEOUT": ("REDIS_SOCKET_TIMEOUT", float),
        "REGISTER_MAX_PER_IP": ("REGISTER_MAX_PER_IP", int),
        "REGISTER_WINDOW_SECONDS": ("REGISTER_WINDOW_SECONDS", int),
        "CACHE_CIRCUIT_RESET_SECONDS": ("CACHE_CIRCUIT_RESET_SECONDS", float),
        "CACHE_KEY_PREFIX": ("CACHE_KEY_PREFIX", str),
        "CACHE_ENABLED": ("CACHE_ENABLED", bool),
        "SECRET_KEY": ("SECRET_KEY", str),
        "ACCESS_TOKEN_SECONDS": ("JWT_ACCESS_TOKEN_EXPIRES", seconds),
        "TIMEZONE": ("TIMEZONE", str),
        "LOG_DIR": ("LOG_DIR", str),
        "LOG_FORMAT": ("LOG_FORMAT", str),
        "LOG_LEVEL": ("LOG_LEVEL", str),
        "METRICS_ALLOW": ("METRICS_ALLOW", str),
        "TRUSTED_PROXIES": ("TRUSTED_PROXIES", str),
        "TRUSTED_HOSTS": ("TRUSTED_HOSTS", host_names),
        "WEB_CONCURRENCY": ("WEB_CONCURRENCY", int),
        "LIVE_MAX_WAIT": ("LIVE_MAX_WAIT", int),
        "LIVE_MIN_INTERVAL_MS": ("LIVE_MIN_INTERVAL_MS", int),
        "LIVE_MAX_WAITERS": ("LIVE_MAX_WAITERS", int),
        "LIVE_STREAMS_PER_USUARIO": ("LIVE_STREAMS_PER_USUARIO", int),
        "LIVE_RECHECK_MS": ("LIVE_RECHECK_MS", int),
        "LIVE_READ_REFRESH_SECONDS": ("LIVE_READ_REFRESH_SECONDS", float),
        "LIVE_FETCH_THREADS": ("LIVE_FETCH_THREADS", int),
        "LIVE_HEARTBEAT_SECONDS": ("LIVE_HEARTBEAT_SECONDS", float),
        "LIVE_AUTH_CHECK_SECONDS": ("LIVE_AUTH_CHECK_SECONDS", float),
        "LIVE_ORDINARY_THREADS": ("LIVE_ORDINARY_THREADS", int),
    }

    @classmethod
    def finalize(cls, config: dict[str, Any]) -> None:
        """Last checks once environment and overrides are applied."""
        check_values(config)
        uri = config["SQLALCHEMY_DATABASE_URI"]
        if uri.startswith("sqlite:///") and uri != "sqlite://":
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        for name in ("LOGIN_MAX_FAILURES", "REGISTER_MAX_PER_IP"):
            if int(config[name]) < 1:  # 0 would refuse nobody's place: every request a 500
                raise Misconfigured(f"{name} must be at least 1, not {config[name]!r}")
        for name in ("LOGIN_WINDOW_SECONDS", "REGISTER_WINDOW_SECONDS"):
            if float(config[name]) <= 0:
                raise Misconfigured(f"{name} must be a positive number of seconds")
        lifetime = config["JWT_ACCESS_TOKEN_EXPIRES"]
        if isinstance(lifetime, timedelta):
            lifetime = lifetime.total_seconds()
        # Every token must expire (auth/tokens.py), within a day: a huge lifetime put exp
        # past datetime's range (a 500 on every login), and a leaked token lives as long.
        if lifetime is False or not 30 <= lifetime <= MAX_ACCESS_TOKEN_SECONDS:
            raise Misconfigured(
                f"ACCESS_TOKEN_SECONDS must be between 30 and {MAX_ACCESS_TOKEN_SECONDS}"
            )
        try:  # else every statistics read would be a 500, and /readyz would say ok
            ZoneInfo(config["TIMEZONE"])
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise Misconfigured(
                f"TIMEZONE must be an IANA time zone name such as America/Havana, "
                f"not {config['TIMEZONE']!r}"
            ) from exc
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
    SECRET_KEY = "test-signing-key-long-enough-for-hs256-0123456789"  # noqa: S105
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    # In-process test apps: a plain read starts no hub thread refreshing the statistics
    # behind the test's back (their tests count MISSes and fetches); tests/live runs
    # real servers with the default and checks that refresh.
    LIVE_READ_REFRESH_SECONDS = 0.0


PRODUCTION_METRICS_ALLOW = "127.0.0.1,::1"


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
            raise Refused(f"production refuses to start without {', '.join(missing)}")
        problem = secret_key_problem(config.get("SECRET_KEY"))
        if problem:
            raise Refused(f"production refuses to start: SECRET_KEY {problem}")
        problem = shared_store_problem(config)
        if problem:
            raise Refused(f"production refuses to start: {problem}")
        if not (config.get("METRICS_ALLOW") or "").replace(",", " ").strip():
            # Closed by default (also when only commas were given: no entry is no entry,
            # not "anyone"): open it by listing the scrapers (0.0.0.0/0 means anyone).
            config["METRICS_ALLOW"] = PRODUCTION_METRICS_ALLOW
        super().finalize(config)


MIN_SECRET_KEY_BYTES = 32
# Words that mark a key copied from documentation or an example file.
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "secret", "example", "placeholder")


def secret_key_problem(key: str | None) -> str | None:
    """Why `key` must not sign production tokens, or None.

    Anyone who has read `.env.example` or a tutorial knows a placeholder key and
    can forge an admin token with it; a short key can be brute-forced offline
    from any one token (HS256 wants at least as many bytes as the hash).
    """
    if not key:
        return "is empty"
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        return f"is shorter than {MIN_SECRET_KEY_BYTES} bytes"
    lowered = key.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"looks like a placeholder (contains {word!r}); generate a random one"
    if len(set(key)) < 8:
        return "has too few distinct characters to be random"
    return None


class Refused(RuntimeError):
    """Production will not start as configured (wsgi.py says so in one line)."""


def shared_store_problem(config: dict[str, Any]) -> str | None:
    """Several workers need one shared store, or each caches and revokes on its own.

    Without it a write through one worker is answered stale by another, and a
    token logged out through one worker keeps working on the others.
    """
    workers = int(config.get("WEB_CONCURRENCY") or 1)
    mode = (config.get("REDIS_MODE") or "standalone").lower()
    if mode == "sentinel":
        if not (config.get("REDIS_SENTINELS") or "").strip():
            return "REDIS_MODE=sentinel needs REDIS_SENTINELS=host:port,..."
        return None
    if workers > 1 and not config.get("REDIS_URL"):
        return (
            f"{workers} workers (WEB_CONCURRENCY) and no shared store: set REDIS_URL "
            "(or REDIS_MODE=sentinel), or run one worker"
        )
    return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(raw: str | int | None) -> list[Network]:
    """TRUSTED_PROXIES: comma-separated proxy addresses or CIDRs; empty or 0 for none.

    A hop count (the old meaning of a number) is refused: it trusted the header
    from any peer, so a client could name its own address.
    """
    text = str(raw if raw is not None else "").strip()
    if text in ("", "0"):
        return []
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.isdigit():
            raise Misconfigured(
                f"TRUSTED_PROXIES: {item!r} is a hop count; list the proxies' addresses or CIDRs"
            )
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise Misconfigured(f"TRUSTED_PROXIES: {item!r} is not an IP address or CIDR") from exc
    return networks


CONFIGS: dict[str, type[Config]] = {
    "development": DevConfig,
    "testing": TestConfig,
    "production": ProdConfig,
}


def config_class_from_env() -> type[Config]:
    """APP_ENV (or FLASK_ENV); an unknown name stops the start: `APP_ENV=prod` ran in
    development, skipping every production refusal without a word."""
    raw = os.environ.get("APP_ENV") or os.environ.get("FLASK_ENV") or "development"
    env = raw.strip().lower()
    if env not in CONFIGS:
        raise Misconfigured(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {raw!r}")
    return CONFIGS[env]


NUMBERS = {int: "whole number", float: "number", seconds: "whole number of seconds"}
# 0 cannot work for these: every Redis command timed out; a gunicorn with no worker.
POSITIVE = ("REDIS_SOCKET_TIMEOUT", "WEB_CONCURRENCY")
BOOLEANS = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _parse(var: str, raw: str, kind: Any) -> Any:
    """The variable's value as `kind`; a value it cannot be stops the start, naming it."""
    if kind is bool:
        word = raw.strip().lower()
        if word not in BOOLEANS:  # CACHE_ENABLED=maybe turned the cache on
            raise Misconfigured(f"{var}: {raw!r} is not one of {', '.join(BOOLEANS)}")
        return BOOLEANS[word]
    try:
        value = kind(raw if kind is str else raw.strip())  # a password may end in a space
    except (TypeError, ValueError) as exc:
        if kind in NUMBERS:
            raise Misconfigured(f"{var}: {raw!r} is not a valid {NUMBERS[kind]}") from exc
        raise  # a converter of ours says what is wrong, naming the variable (host_names)
    if kind is float and not math.isfinite(value):  # float("nan") reads, and compares false
        raise Misconfigured(f"{var}: {raw!r} is not a finite number")
    if kind in (int, float) and value < 0:  # no setting means anything below 0
        raise Misconfigured(f"{var} must be 0 or more, not {raw!r}")
    if var in POSITIVE and value <= 0:
        raise Misconfigured(f"{var} must be more than 0, not {raw!r}")
    return value


def load_environment(config: dict[str, Any], environ: dict[str, str] | None = None) -> None:
    """Apply the documented environment variables on top of a config class's defaults."""
    environ = dict(os.environ if environ is None else environ)
    for var, (key, kind) in Config.ENV_VARS.items():
        raw = environ.get(var)
        if raw not in (None, ""):
            config[key] = _parse(var, raw, kind)
    config["CACHE_TTL_OVERRIDES"] = {
        var.removeprefix("CACHE_TTL_").lower(): _parse(var, raw, int)
        for var, raw in environ.items()
        if var.startswith("CACHE_TTL_") and raw.strip()
    }
