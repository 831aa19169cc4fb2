"""The shared Redis client for the configured REDIS_MODE.

- `standalone`: `REDIS_URL`.
- `sentinel`: `REDIS_SENTINELS=host:port,…` and `REDIS_SENTINEL_MASTER` (no
  `REDIS_URL`), with `REDIS_PASSWORD`, `REDIS_SENTINEL_PASSWORD`, `REDIS_DB`; the
  pool asks the sentinels again every `REDIS_SENTINEL_CHECK_MS` (sentinel.py).
- `cluster`: `REDIS_URL` naming one or more startup nodes, as `redis://h:p[/0]`,
  `redis://h:p,h:p` or plain `h:p,h:p` (a cluster has only db 0).

Every connection, the sentinels' included, gets the same short socket and
connect timeouts and no retries: a hung or dead server (or sentinel) costs one
timeout, after which the circuit breaker keeps requests away from it.

`build_client` builds at once (a cluster client then connects); the app uses
`lazy_client`, which builds on first use and again until that works.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from electro_isla.config_values import Misconfigured
from electro_isla.shared_store.lazy import LazyClient
from electro_isla.shared_store.sentinel import FollowingPool

MODES = ("standalone", "sentinel", "cluster")


def timeouts(config: dict[str, Any]) -> dict[str, Any]:
    """Short timeouts and no retries, so an outage costs milliseconds."""
    timeout = float(config["REDIS_SOCKET_TIMEOUT"])
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def parse_hosts(raw: str, default_port: int) -> list[tuple[str, int]]:
    """`h:p,h:p` or `redis://[:pw@]h:p[/db],…` -> [(host, port)]; a bad entry raises Misconfigured."""
    hosts = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        netloc = urlsplit(item if "://" in item else f"redis://{item}")
        if netloc.hostname is None:
            raise Misconfigured(f"no host in {item!r}")
        hosts.append((netloc.hostname, netloc.port or default_port))
    if not hosts:
        raise Misconfigured("no host given")
    return hosts


def cluster_password(raw: str) -> str | None:
    first = urlsplit(raw.split(",")[0].strip())
    return unquote(first.password) if first.password else None


def configured(config: dict[str, Any]) -> bool:
    """True when a shared Redis is configured (a URL, or sentinels in sentinel mode)."""
    if config.get("REDIS_MODE") == "sentinel":
        return bool(config.get("REDIS_SENTINELS"))
    return bool(config.get("REDIS_URL"))


def build_client(config: dict[str, Any]) -> Redis | RedisCluster | None:
    """The client for the configured mode, or None when no shared Redis is configured."""
    mode = config.get("REDIS_MODE", "standalone")
    if mode not in MODES:
        raise Misconfigured(f"REDIS_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    if not configured(config):
        return None
    options = timeouts(config)
    password = config.get("REDIS_PASSWORD") or None
    if mode == "standalone":
        extra = {"password": password} if password else {}
        return Redis.from_url(
            config["REDIS_URL"], retry=_no_retry(), health_check_interval=0, **options, **extra
        )
    if mode == "sentinel":
        sentinel_kwargs = {**options, "retry": _no_retry()}
        if config.get("REDIS_SENTINEL_PASSWORD"):
            sentinel_kwargs["password"] = config["REDIS_SENTINEL_PASSWORD"]
        sentinel = Sentinel(
            parse_hosts(config["REDIS_SENTINELS"], 26379), sentinel_kwargs=sentinel_kwargs
        )
        return sentinel.master_for(
            config["REDIS_SENTINEL_MASTER"],
            redis_class=Redis,
            connection_pool_class=FollowingPool,
            check_every=int(config.get("REDIS_SENTINEL_CHECK_MS", 500)) / 1000,
            db=int(config.get("REDIS_DB") or 0),
            password=password,
            retry=_no_retry(),
            health_check_interval=0,
            **options,
        )
    url = config["REDIS_URL"]
    return RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in parse_hosts(url, 6379)],
        password=password or cluster_password(url),
        retry=_no_retry(),
        # A dead node: fail this request now; the breaker decides when to look again.
        reinitialize_steps=1,
        **options,
    )


def lazy_client(config: dict[str, Any]) -> LazyClient | None:
    """`build_client` deferred to the first command, or None when no Redis is configured.

    A bad REDIS_MODE still fails at start; an unreachable server or cluster does not.
    """
    mode = config.get("REDIS_MODE", "standalone")
    if mode not in MODES:
        raise Misconfigured(f"REDIS_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    if not configured(config):
        return None
    settings = dict(config)
    return LazyClient(lambda: build_client(settings))
