"""Credentials and tokens: registration, login checks, refresh rotation, logout.

Access tokens are 15-minute HS256 JWTs. Refresh tokens live in auth/refresh.py
(one family per login, rotated in place; a reused member revokes them all).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from electro_isla.auth.models import RevokedToken
from electro_isla.auth.refresh import (
    RefreshRejected,
    issue_refresh_token,
    lock_usuario,
    login_of,
    revoke_refresh_tokens,
    rotate_refresh_token,
)
from electro_isla.auth.tokens import LOGIN_CLAIM, revocation_keys
from electro_isla.cache.listeners import effect_after_commit
from electro_isla.db_types import utcnow
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario, mismo_username, normalize_email

__all__ = ["RefreshRejected", "issue_refresh_token", "rotate_refresh_token"]


class DuplicateUsuario(Exception):
    """The username or email is taken; `field` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def issue_access_token(usuario: Usuario, refresh: str | None = None) -> str:
    """A 15-minute HS256 access token with the contract's claims, and the login it belongs
    to (the family of `refresh`, the cookie issued beside it): what a logout revokes. One
    minted outside a login (tests, benchmarks) is revoked by its jti."""
    claims = {"username": usuario.username, "email": usuario.email, "rol": usuario.rol}
    if refresh is not None:
        claims[LOGIN_CLAIM] = login_of(refresh)
    return create_access_token(identity=str(usuario.id), additional_claims=claims)


def register_usuario(data: dict[str, Any]) -> Usuario:
    """Create a `cliente`; nobody chooses their own role. Commits.

    The case rule (see Usuario): the email is stored lower-cased, the username
    as typed, and neither may match an existing one in any case.
    """
    username = data["username"]
    email = normalize_email(data["email"])
    same_name = mismo_username(username)
    taken = db.session.execute(
        select(same_name.label("same_name")).where(or_(same_name, Usuario.email == email))
    ).first()
    if taken is not None:
        # Which one clashed, by the database's lower() too: Python's folds Σ, İ and
        # (on SQLite) Ñ otherwise, and the 409 named the wrong field.
        raise DuplicateUsuario("username" if taken.same_name else "email")
    usuario = Usuario(
        username=username,
        email=email,
        first_name=data.get("first_name", ""),
        last_name=data.get("last_name", ""),
        rol="cliente",
        is_active=True,
    )
    usuario.set_password(data["password"])
    db.session.add(usuario)
    try:
        db.session.commit()
    except IntegrityError as exc:
        # Lost a race with a concurrent registration of the same name.
        db.session.rollback()
        raise DuplicateUsuario("username or email") from exc
    return usuario


def find_for_login(identifier: str) -> Usuario | None:
    """The one usuario whose email (when `identifier` has an "@") or username it is.

    Both are unique whatever the case (indexes on lower()), and usernames cannot
    contain "@", so at most one usuario matches.
    """
    identifier = identifier.strip()
    if "@" in identifier:
        condition = Usuario.email == normalize_email(identifier)
    else:
        condition = mismo_username(identifier)
    return db.session.scalars(select(Usuario).where(condition)).first()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def credentials_valid(usuario: Usuario | None, password: str) -> bool:
    """True for an active usuario with this password.

    An unknown usuario still costs one hash check, so response time does not
    tell whether an account exists.
    """
    if usuario is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return usuario.check_password(password) and usuario.is_active


PURGE_BATCH = 100
CLOCK_SKEW = timedelta(seconds=60)


def access_lifetime() -> timedelta:
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


def record_revocations(revoked: dict[str, datetime]) -> None:
    """Keep revoked entries (a login's, a jti) in the database until they expire (not
    committed). Expired rows are purged here, a bounded batch each time, so the table
    holds roughly the revocations of the last access-token lifetime."""
    now = utcnow()
    db.session.execute(
        delete(RevokedToken)
        .where(
            RevokedToken.jti.in_(
                select(RevokedToken.jti).where(RevokedToken.expires_at <= now).limit(PURGE_BATCH)
            )
        )
        .execution_options(synchronize_session=False)
    )
    for key, expires_at in revoked.items():
        if expires_at > now and db.session.get(RevokedToken, key) is None:
            db.session.add(RevokedToken(jti=key, expires_at=expires_at))
            # Reaches Redis through the outbox, recorded in this same transaction.
            effect_after_commit(db.session, "revoke", key, expires_at.timestamp())


def logout(usuario_id: int, jwt_payload: dict[str, Any]) -> None:
    """Revoke this access token's login (every access token it minted) and the token
    itself, and every refresh token of the usuario. Commits."""
    lock_usuario(usuario_id)
    revoke_refresh_tokens(usuario_id)
    jti = str(jwt_payload["jti"])
    expires = datetime.fromtimestamp(float(jwt_payload["exp"]), UTC)
    # The login's newest token was minted about now at the latest (its refresh tokens are
    # revoked under the same lock): it expires within a lifetime, plus another host's
    # clock skew, and never before the token presented here.
    login_expires = max(expires, utcnow() + access_lifetime() + CLOCK_SKEW)
    record_revocations(
        {k: expires if k == jti else login_expires for k in revocation_keys(jwt_payload)}
    )
    db.session.commit()
