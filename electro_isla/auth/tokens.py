"""Access-token plumbing: the revocation list and flask-jwt-extended's callbacks.

Logout revokes an access token by its `jti`, in two places: the database
(`revoked_tokens`, written in logout's transaction) and, with `REDIS_URL`,
Redis (`<prefix>:auth:revoked:<jti>`, expiring with the token), which answers
the per-request check at no SQL cost. While Redis is unreachable (its circuit
breaker open, or a command failing) the check is answered from the database
instead, so an outage never revives a logged-out token, whichever worker
logged it out. Each process also remembers the jtis it revoked itself, and
replays to Redis the writes Redis missed. Without Redis (one worker), the
process's own list answers, seeded from the database when the process starts,
so a restarted or recycled worker still refuses tokens logged out before.

The callbacks turn every token failure into a 401 in the API's JSON envelope
instead of flask-jwt-extended's `{"msg": ...}`; they are set on the shared
`jwt` manager when this module is imported (views.py and permissions.py do).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import cached_property
from typing import Any

from flask import Flask, Response, current_app, jsonify
from sqlalchemy import select

from electro_isla.cache import REDIS_ERRORS, RedisHealth, redis_health
from electro_isla.db_types import utcnow
from electro_isla.extensions import jwt

log = logging.getLogger("electro_isla.auth")

EXTENSION_KEY = "electro_isla.auth.revocations"
LOCAL_PURGE_EVERY = 256


class RevocationStore:
    """Revoked access-token jtis until they would have expired anyway."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.key_prefix = f"{app.config['CACHE_KEY_PREFIX']}:auth:revoked:"
        self._local: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._seeded = False

    @cached_property
    def health(self) -> RedisHealth:
        return redis_health(self.app)

    def _client(self) -> Any:
        """The shared Redis client, or None (no Redis, or the cache's circuit is open)."""
        return self.health.client()

    def _worked(self) -> None:
        self.health.worked()

    def _failed(self, action: str, exc: Exception) -> None:
        self.health.failed(f"revocation {action}", f"{self.key_prefix}*", exc)
        log.warning("REVOCATION %s failed, Redis unavailable: %s", action, type(exc).__name__)

    def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse `jti` from now until `expires_at` (epoch seconds)."""
        now = time.time()
        if expires_at <= now:
            return
        shared = self.health.shared
        with self._lock:
            self._local[jti] = expires_at
            if len(self._local) % LOCAL_PURGE_EVERY == 0:
                self._local = {j: e for j, e in self._local.items() if e > now}
            if shared:
                self._pending = {j: e for j, e in self._pending.items() if e > now}
                self._pending[jti] = expires_at
        if shared:
            self._flush()

    def _flush(self) -> None:
        """Write pending revocations to Redis (kept for later if it does not answer)."""
        client = self._client()
        if client is None:
            return
        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return
        now = time.time()
        try:
            pipe = client.pipeline(transaction=False)
            for jti, expires_at in pending.items():
                ttl = math.ceil(expires_at - now)
                if ttl > 0:
                    pipe.set(self.key_prefix + jti, 1, ex=ttl)
            pipe.execute()
        except REDIS_ERRORS as exc:
            self._failed("write", exc)
            return
        self._worked()
        with self._lock:
            for jti in pending:
                self._pending.pop(jti, None)

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            expires_at = self._local.get(jti)
        if expires_at is not None and expires_at > time.time():
            return True
        if not self.health.shared:
            self._seed_from_database()
            with self._lock:
                expires_at = self._local.get(jti)
            return expires_at is not None and expires_at > time.time()
        client = self._client()
        if client is None:
            return self._in_database(jti)
        if self._pending:
            self._flush()
        try:
            revoked = bool(client.exists(self.key_prefix + jti))
        except REDIS_ERRORS as exc:
            self._failed("check", exc)
            return self._in_database(jti)
        self._worked()
        return revoked

    @staticmethod
    def _in_database(jti: str) -> bool:
        """The check while Redis cannot answer: the table logout also writes."""
        from electro_isla.auth.models import RevokedToken
        from electro_isla.extensions import db

        found = db.session.scalar(
            select(RevokedToken.jti).where(
                RevokedToken.jti == jti, RevokedToken.expires_at > utcnow()
            )
        )
        return found is not None

    def _seed_from_database(self) -> None:
        """Once per process without Redis: the revocations made before it started."""
        if self._seeded:
            return
        from electro_isla.auth.models import RevokedToken
        from electro_isla.extensions import db

        rows = db.session.execute(
            select(RevokedToken.jti, RevokedToken.expires_at).where(
                RevokedToken.expires_at > utcnow()
            )
        ).all()
        with self._lock:
            for jti, expires_at in rows:
                self._local.setdefault(jti, expires_at.timestamp())
            self._seeded = True


def revocations(app: Flask | None = None) -> RevocationStore:
    """This app's revocation store, created on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    store = app.extensions.get(EXTENSION_KEY)
    if store is None:
        store = app.extensions.setdefault(EXTENSION_KEY, RevocationStore(app))
    return store


def unauthorized(message: str) -> tuple[Response, int, dict[str, str]]:
    """A 401 in the API's error envelope."""
    body = jsonify(code=401, status="Unauthorized", message=message)
    return body, 401, {"WWW-Authenticate": "Bearer"}


@jwt.token_in_blocklist_loader
def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    jti = payload.get("jti")
    return not jti or revocations().is_revoked(str(jti))


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
