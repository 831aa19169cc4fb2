"""Access-token plumbing: the revocation list and flask-jwt-extended's callbacks.

Logout revokes the login an access token belongs to (its `fam` claim: `fam:<login>`,
a one-way digest of the refresh family) and the token's own `jti`, so every access
token that login minted goes at once, and a usuario who refreshes a thousand times and
logs out with each token leaves two entries, not a thousand (a later logout of the
login is already a 401). `revocation_keys` names them; a check reads both. The
database is the authority
(`revoked_tokens`, written in logout's transaction). With `REDIS_URL`, Redis
holds a copy that is complete or absent: ONE sorted set
`<prefix>:auth:revoked` (member jti, score its expiry) with a member
`!complete` that says it was loaded from the table. The per-request check is
one round trip (ZMSCORE of the mark and the jti); without the mark (the key
was evicted, flushed, lost in a restart or a failover, or only holds adds made
since) it is reloaded from the table, all at once by one script, so no fault can
leave a copy that looks complete and lacks a revocation the table holds.

The logout's add reaches the set through the outbox (cache/outbox.py): it is
recorded in logout's own transaction and applied after COMMIT by that process
or, if Redis did not take it or the process died, by the drain of any process,
which every check runs before it trusts the copy. While Redis is unreachable
the check is answered from the table. Without Redis (one worker), the process's
own list answers, seeded from the table when the process starts, so a restarted
or recycled worker still refuses tokens logged out before.

The callbacks turn every token failure into a 401 in the API's JSON envelope
instead of flask-jwt-extended's `{"msg": ...}`; they are set on the shared
`jwt` manager when this module is imported (views.py and permissions.py do).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from flask import Flask, Response, current_app, jsonify
from sqlalchemy import select

from electro_isla.auth.models import RevokedToken
from electro_isla.cache import EXTENSION_KEY as CACHE_EXTENSION_KEY
from electro_isla.cache import REDIS_ERRORS, RedisHealth, redis_health, shared_redis
from electro_isla.cache.outbox import Effect, register_applier
from electro_isla.db_types import utcnow
from electro_isla.extensions import db, jwt

log = logging.getLogger("electro_isla.auth")

EXTENSION_KEY = "electro_isla.auth.revocations"
LOCAL_PURGE_EVERY = 256
COMPLETE = "!complete"  # never a jti: the copy holds every revocation of the table
LOGIN_CLAIM = "fam"  # the login an access token was minted for (auth/refresh.py: login_of)
LOGIN = re.compile(r"[0-9a-f]{32}")

# KEYS[1]: the revoked set. ARGV[1]: now (epoch seconds); ARGV[2]: the key's TTL;
# then jti, expiry pairs: every revocation the table holds. Adds them and the mark
# in one step, keeping what was added meanwhile (a logout committed after the table
# was read).
LOAD_SCRIPT = """
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
local batch = {}
for i = 3, #ARGV, 2 do
  batch[#batch + 1] = ARGV[i + 1]
  batch[#batch + 1] = ARGV[i]
  if #batch >= 1000 then
    redis.call('ZADD', key, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('ZADD', key, unpack(batch))
end
redis.call('ZADD', key, 'inf', '!complete')
redis.call('EXPIRE', key, ARGV[2])
return 1
"""


class RevocationStore:
    """Revoked access-token jtis until they would have expired anyway."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.key = f"{app.config['CACHE_KEY_PREFIX']}:auth:revoked"
        # The key outlives every member it holds (a revoked token expires within an
        # access lifetime of its logout), and has a TTL so that `volatile-lru` may
        # evict it whole: absent, it is reloaded from the table, never trusted half.
        lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
        self.ttl = int(seconds) + 60
        self._local: dict[str, float] = {}
        self._lock = threading.Lock()
        self._seeded = False

    @cached_property
    def health(self) -> RedisHealth:
        return redis_health(self.app)

    def _redis(self) -> Any:
        """The shared Redis client (None without Redis): the one place this store gets it."""
        return shared_redis(self.app)

    @cached_property
    def _manager(self) -> Any:
        return self.app.extensions[CACHE_EXTENSION_KEY]

    def _failed(self, action: str, exc: Exception) -> None:
        self.health.failed(f"revocation {action}", self.key, exc)
        log.warning("REVOCATION %s failed, Redis unavailable: %s", action, type(exc).__name__)

    # -- the outbox's applier ------------------------------------------------------

    def apply(self, effects: list[Effect]) -> None:
        """Add committed revocations to the copy (raises a Redis error: the outbox keeps them)."""
        now = time.time()
        live = {e.target: float(e.expires_at or 0) for e in effects if (e.expires_at or 0) > now}
        if self._redis() is None:
            with self._lock:
                self._local.update(live)
                if len(self._local) % LOCAL_PURGE_EVERY == 0:
                    self._local = {j: x for j, x in self._local.items() if x > now}
            return
        if not live:
            return

        # Into a missing key too: a set without the mark is reloaded, never trusted.
        def fill(pipe: Any) -> None:
            pipe.zadd(self.key, live)
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.expire(self.key, self.ttl)

        self._manager.store.write(fill, "revocation")

    # -- the per-request check -----------------------------------------------------

    def is_revoked(self, keys: Sequence[str], caller: int | None = None) -> bool:
        """True when any of a token's `keys` (revocation_keys) was logged out. `caller` (the
        token's usuario): the lookups the request asked for ahead go in this check's round
        trip (cache/ahead.py)."""
        client = self._redis()
        if client is None:
            self._seed_from_database()
            now = time.time()
            with self._lock:
                return any(self._local.get(k, 0.0) > now for k in keys)
        if not self._manager.catch_up():  # the breaker is open, or the outbox could not drain
            return self._in_database(keys)

        def check(redis: Any) -> Any:
            return redis.zmscore(self.key, [COMPLETE, *keys])

        try:
            if caller is None:
                complete, *expiries = check(client)
            else:
                complete, *expiries = self._manager.beside_ahead(check, caller)
        except REDIS_ERRORS as exc:
            self._failed("check", exc)
            return self._in_database(keys)
        self.health.worked()
        if complete is None:
            return self._load(client, keys)
        now = time.time()
        return any(x is not None and x > now for x in expiries)

    def revoked_among(self, jtis: Iterable[str]) -> set[str]:
        """The revoked ones of `jtis`: one round trip for many held clients (live/recheck.py)."""
        unique = list(dict.fromkeys(jtis))
        client = self._redis()
        if client is None or not unique or not self._manager.catch_up():
            return {jti for jti in unique if self.is_revoked([jti])}
        try:
            complete, *expiries = client.zmscore(self.key, [COMPLETE, *unique])
        except REDIS_ERRORS as exc:
            self._failed("check", exc)
            return {jti for jti in unique if self._in_database([jti])}
        self.health.worked()
        if complete is None:  # the copy must be reloaded first: one by one, as a request does
            return {jti for jti in unique if self.is_revoked([jti])}
        now = time.time()
        return {j for j, x in zip(unique, expiries, strict=True) if x is not None and x > now}

    def _load(self, client: Any, keys: Sequence[str]) -> bool:
        """Rebuild the copy from the table (it was absent or incomplete); answer for `keys`."""
        rows = self._live_rows()
        args: list[Any] = [time.time(), self.ttl]
        for revoked, expires_at in rows:
            args += [revoked, expires_at.timestamp()]
        try:
            client.register_script(LOAD_SCRIPT)(keys=[self.key], args=args)
        except REDIS_ERRORS as exc:
            self._failed("load", exc)
        else:
            log.info("REVOCATION copy loaded from the database: %d jti(s)", len(rows))
        return any(revoked in keys for revoked, _ in rows)

    @staticmethod
    def _live_rows() -> list[tuple[str, Any]]:
        return [
            (str(j), e)
            for j, e in db.session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(
                    RevokedToken.expires_at > utcnow()
                )
            ).all()
        ]

    @staticmethod
    def _in_database(keys: Sequence[str]) -> bool:
        """The check while Redis cannot answer: the table logout also writes."""
        found = db.session.scalar(
            select(RevokedToken.jti)
            .where(RevokedToken.jti.in_(list(keys)), RevokedToken.expires_at > utcnow())
            .limit(1)
        )
        return found is not None

    def _seed_from_database(self) -> None:
        """Once per process without Redis: the revocations made before it started."""
        if self._seeded:
            return
        rows = self._live_rows()
        with self._lock:
            for jti, expires_at in rows:
                self._local.setdefault(jti, expires_at.timestamp())
            self._seeded = True


def revocations(app: Flask | None = None) -> RevocationStore:
    """This app's revocation store, created on first use."""
    app = app or current_app
    store = app.extensions.get(EXTENSION_KEY)
    if store is None:
        store = app.extensions.setdefault(
            EXTENSION_KEY,
            RevocationStore(app.app_context().app),  # the app, not a proxy
        )
    return store


def unauthorized(message: str) -> tuple[Response, int, dict[str, str]]:
    """A 401 in the API's error envelope."""
    body = jsonify(code=401, status="Unauthorized", message=message)
    return body, 401, {"WWW-Authenticate": "Bearer"}


# usuarios.id is an INTEGER: a subject past it names nobody (and a database refuses it).
MAX_SUBJECT = 2**31 - 1


def token_subject(payload: dict[str, Any]) -> int | None:
    """The usuario id a token's `sub` names, or None when it names none."""
    sub = payload.get("sub")
    if not isinstance(sub, str) or not (0 < len(sub) <= 10 and sub.isascii() and sub.isdigit()):
        return None
    usuario_id = int(sub)
    return usuario_id if 0 < usuario_id <= MAX_SUBJECT else None


def revocation_keys(payload: dict[str, Any]) -> list[str]:
    """The entries a logout of this token writes and every check reads: its login's
    (`fam:<login>`), when it names one, and its own jti. Both: a host of the version
    before the login entry reads and writes jtis only, and during a rolling deploy each
    must see the other's logouts. [] for a token without a jti (never accepted)."""
    jti = payload.get("jti")
    if not jti:
        return []
    login = payload.get(LOGIN_CLAIM)
    if isinstance(login, str) and LOGIN.fullmatch(login):
        return [f"fam:{login}", str(jti)]
    return [str(jti)]


@jwt.token_verification_loader
def _well_formed(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Every token this app signs has an expiry and names a usuario: one that does not
    (signed with the key, by hand) would never expire or fail in the lookup (a 500)."""
    return isinstance(payload.get("exp"), int | float) and token_subject(payload) is not None


@jwt.token_in_blocklist_loader
def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    keys = revocation_keys(payload)
    return not keys or revocations().is_revoked(keys, token_subject(payload))


@jwt.unauthorized_loader
def _missing(_reason: str) -> tuple[Response, int, dict[str, str]]:
    return unauthorized("Authentication credentials were not provided.")


@jwt.invalid_token_loader
def _invalid(_reason: str) -> tuple[Response, int, dict[str, str]]:
    return unauthorized("The access token is invalid.")


@jwt.expired_token_loader
def _expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return unauthorized("The access token has expired.")


@jwt.revoked_token_loader
def _revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return unauthorized("The access token has been revoked.")


@jwt.needs_fresh_token_loader
def _not_fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return unauthorized("A fresh access token is required.")


@jwt.token_verification_failed_loader
def _claims_failed(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return unauthorized("The access token is invalid.")


@jwt.user_lookup_error_loader
def _user_missing(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return unauthorized("This account is inactive or no longer exists.")


register_applier("revoke", lambda app: revocations(app).apply)
