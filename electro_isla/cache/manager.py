"""The CacheManager: one app's cache, assembled from its parts.

    keys.py          every key (and its Lua twin)
    stores.py        where values, generations, locks, counters live (in-process)
    redis_store.py   the same in Redis, through the scripts of scripts.py
    reads.py         the read pipeline: admit → lookup → HIT, or fill → store; or bypass
    composed.py      catalogue pages over the same pipeline
    invalidation.py  bumps after COMMIT, and the outbox drain (outbox.py)
    stats.py         the one counting sink, and the shared statistics

The manager wires them per app and is the API the rest of the package uses:
`get`, `pages.get`, `invalidate`, `invalidate_pattern`, `get_stats`, `ping`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask
from redis import Redis

import electro_isla.cache.ahead as ahead
from electro_isla.cache.composed import ComposedPages
from electro_isla.cache.invalidation import Invalidation
from electro_isla.cache.keys import KeySpace
from electro_isla.cache.outbox import Effect, Outbox, register_applier
from electro_isla.cache.reads import BYPASS, HIT, MISS, ReadPipeline
from electro_isla.cache.redis_store import RedisStore
from electro_isla.cache.registry import EXTENSION_KEY, REGISTRY
from electro_isla.cache.stats import Counting, SharedStats
from electro_isla.cache.stores import LocalStore, Parts
from electro_isla.config_values import Misconfigured
from electro_isla.extensions import db
from electro_isla.json import dumps, loads
from electro_isla.shared_store import REDIS_ERRORS, shared_store

__all__ = ["BYPASS", "EXTENSION_KEY", "HIT", "MISS", "CacheManager", "CacheUnavailable"]

log = logging.getLogger("electro_isla.cache")


class CacheUnavailable(Exception):
    """Raised by clearing operations when the shared store cannot be used now."""


def _rendering(fetch: Callable[[], Any], render: Callable[[Any], Any]) -> Callable[[], Any]:
    """fetch() normalised the way a plain value is, then rendered."""
    return lambda: render(loads(dumps(fetch())))


class CacheManager:
    """Cache-aside reads, post-commit invalidation, clearing and statistics, per app."""

    def __init__(self, app: Flask, backend: Any, redis_client: Redis | None) -> None:
        config = app.config
        self.app = app
        self.prefix = config["CACHE_KEY_PREFIX"]
        self.keys = KeySpace(self.prefix)
        self.enabled = config["CACHE_ENABLED"]
        overrides = config.get("CACHE_TTL_OVERRIDES", {})
        for name in overrides.keys() - REGISTRY.keys():  # a typo set nothing, silently
            raise Misconfigured(f"CACHE_TTL_{name.upper()}: no cached name {name!r}")
        self.ttls = {name: overrides.get(name, entry.ttl) for name, entry in REGISTRY.items()}
        # Generation counters outlive every value that embeds them, then expire.
        self.gen_ttl = max(self.ttls.values())
        self.store: RedisStore | LocalStore
        if redis_client is not None:
            mode = str(config.get("REDIS_MODE") or "standalone").lower()
            wait = config.get("CACHE_WAIT_REPLICAS")
            if wait is None:
                wait = 0 if mode == "standalone" else 1
            self.store = RedisStore(
                redis_client,
                backend,
                self.keys,
                self.gen_ttl,
                (int(wait), int(config["CACHE_WAIT_TIMEOUT_MS"])),
                cluster=mode == "cluster",
            )
            self.backend_name = "redis"
        else:
            self.store = LocalStore(backend, self.keys, self.gen_ttl)
            self.backend_name = "simple"
        self.breaker = shared_store(app).breaker
        self.counting = Counting(app, self.breaker)
        self.stats = SharedStats(self.store, self.counting)
        # Durable (rows in the writer's transaction) whenever the state is shared.
        self.outbox = Outbox(
            app,
            self.engine,
            self.prefix,
            float(config["CACHE_PENDING_CHECK_MS"]) / 1000,
            durable=redis_client is not None,
        )
        parts = Parts(app, self.store, self.keys, self.counting, self.breaker, self.ttls)
        self.invalidation = Invalidation(
            parts, self.outbox, self.enabled, float(config["CACHE_CIRCUIT_RESET_SECONDS"])
        )
        self.reads = ReadPipeline(parts, self.invalidation, config)
        # Composed names (catalogue pages): id lists plus per-row fragments.
        self.pages = ComposedPages(self.reads)
        self._db_engine: Any = None

    def engine(self) -> Any:
        """The app's database engine (the outbox table lives there), resolved once."""
        if self._db_engine is None:
            with self.app.app_context():
                self._db_engine = db.engine
        return self._db_engine

    # -- keys ------------------------------------------------------------------

    def gen_key(self, name: str, row: object | None = None) -> str:
        return self.keys.gen_key(name, row)

    def key_for(
        self, name: str, row: object | None = None, params: Mapping[str, Any] | None = None
    ) -> str:
        """The full Redis key a lookup of (name, row, params) would use right now."""
        spec = self.keys.spec(name, row, params)
        return self.keys.full(self.keys.value_key(spec, self.store.generations(spec.gen_keys)))

    # -- reads -----------------------------------------------------------------

    def get(
        self,
        name: str,
        fetch: Callable[[], Any],
        *,
        row: object | None = None,
        params: Mapping[str, Any] | None = None,
        record: bool = True,
        render: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Return the cached value of `name` (for `row`/`params`), computing it on a miss.

        `fetch` must return JSON-able data (Decimals and datetimes are rendered);
        the value returned is the JSON round trip, identical on HIT and MISS.
        `record=False` keeps this lookup out of the response's X-Cache header.

        `render` (JSON round trip of fetch() -> JSON-able) is applied once, at
        fetch time, and its result is what is cached and returned: a HIT then
        skips the work render does (e.g. dumping the response body and hashing
        its ETag). It is stored beside the plain value, under the same
        generations, so it is exactly as fresh.

        A composed name's pages go through `self.pages` (cache/composed.py): a
        value stored here under such a name follows only its membership columns.
        """
        spec = self.keys.spec(name, row, params, rendered=render is not None)
        if render is not None:
            fetch = _rendering(fetch, render)
        return self.reads.read(spec, fetch, record)

    def ask_ahead(
        self,
        name: str,
        *,
        callers_row: bool = False,
        params: Mapping[str, Any] | None = None,
        rendered: bool = False,
    ) -> None:
        """Look `name` up in this request's token check, in its round trip (cache/ahead.py).

        `callers_row`: the row is the calling usuario's id, known once the token is read.
        """
        keys = self.keys
        ahead.want(
            lambda caller: keys.spec(name, caller if callers_row else None, params, rendered)
        )

    def beside_ahead(self, command: Callable[[Any], Any], caller: int) -> Any:
        """`command(client)` sent with the lookups asked ahead for `caller`: one round trip."""
        specs = ahead.wanted(caller) if self.enabled else []
        if not isinstance(self.store, RedisStore):
            raise CacheUnavailable("no shared store to send the command to")
        reply, found = self.store.beside(command, specs)
        if found:
            ahead.keep(found)
        return reply

    # -- invalidation ------------------------------------------------------------

    def invalidate(
        self, names: Iterable[str] = (), rows: Iterable[tuple[str, object]] = ()
    ) -> None:
        """Invalidate whole names and/or (name, row) pairs, now.

        Callers inside a transaction should use `listeners.invalidate_after_commit`
        instead, so that a rollback keeps the cache as it was.
        """
        self.invalidation.invalidate(self.invalidation.bump_effects(names, rows))

    def bump_effects(
        self, names: Iterable[str], rows: Iterable[tuple[str, object]]
    ) -> list[Effect]:
        return self.invalidation.bump_effects(names, rows)

    def apply_committed(self, effects: list[Effect]) -> None:
        self.invalidation.apply_committed(effects)

    def catch_up(self) -> bool:
        """The breaker lets us in and what the outbox held is applied: Redis may be trusted."""
        return self.breaker.allow() and self.invalidation.catch_up()

    @property
    def pending_invalidations(self) -> int:
        return self.invalidation.pending

    def ping(self) -> bool:
        """True when the cache can be used right now (always, in-process)."""
        if not self.store.shared:
            return True
        if not self.breaker.allow():
            return False
        try:
            self.store.ping()
        except REDIS_ERRORS as exc:
            self.counting.failed("ping", "ping", exc)
            return False
        self.breaker.success()
        return self.catch_up()

    # -- clearing ----------------------------------------------------------------

    def invalidate_pattern(self, pattern: str) -> int:
        """Delete cached values matching the glob (SCAN + UNLINK); never touches other keys.

        The glob applies to `<name>:<row>:…`; a pattern without a trailing `*`
        means that name (or name:row) exactly. Matching names are invalidated
        first, so a reader already computing from older data stores a dead key.
        """
        names = [n for n in REGISTRY if fnmatch.fnmatchcase(n, pattern.split(":", 1)[0])]
        self.invalidate(names=names)
        if not self.catch_up():
            raise CacheUnavailable("the cache server is not answering")
        glob = self.keys.entry_glob(pattern)
        try:
            deleted = self.store.delete_matching(glob)
        except REDIS_ERRORS as exc:
            self.counting.failed("clear", pattern, exc)
            raise CacheUnavailable("the cache server is not answering") from exc
        log.info("INVALIDATE %s:%s deleted=%d", self.prefix, glob, deleted)
        return deleted

    def clear_all(self) -> int:
        return self.invalidate_pattern("*")

    # -- statistics --------------------------------------------------------------

    def flush_stats(self) -> None:
        self.stats.flush()

    def get_stats(self) -> dict[str, Any]:
        """Totals and per-name counters of every worker sharing the store."""
        figures = self.stats.read(reachable=self.catch_up())
        return {
            "backend": self.backend_name,
            **figures,
            "ttl": dict(self.ttls),
            "circuit_open": self.breaker.is_open,
            "pending_invalidations": self.pending_invalidations,
        }


register_applier("bump", lambda app: app.extensions[EXTENSION_KEY].invalidation.apply_bumps)
