"""Credentials and tokens: registration, login checks, refresh rotation, logout.

Access tokens are 15-minute HS256 JWTs. Refresh tokens are opaque random
strings; only their SHA-256 is stored, each works once (using it issues the
next one), and presenting one that was already used means it was copied: every
refresh token of that usuario is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from electro_isla.auth.models import RefreshToken, RevokedToken
from electro_isla.cache.listeners import effect_after_commit
from electro_isla.db_types import utcnow
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario, normalize_email

REFRESH_TOKEN_BYTES = 32


class DuplicateUsuario(Exception):
    """The username or email is taken; `field` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked or already used."""


def issue_access_token(usuario: Usuario) -> str:
    """A 15-minute HS256 access token with the contract's claims."""
    return create_access_token(
        identity=str(usuario.id),
        additional_claims={
            "username": usuario.username,
            "email": usuario.email,
            "rol": usuario.rol,
        },
    )


def register_usuario(data: dict[str, Any]) -> Usuario:
    """Create a `cliente`; nobody chooses their own role. Commits.

    The case rule (see Usuario): the email is stored lower-cased, the username
    as typed, and neither may match an existing one in any case.
    """
    username = data["username"]
    email = normalize_email(data["email"])
    taken = db.session.execute(
        select(Usuario.username, Usuario.email).where(
            or_(func.lower(Usuario.username) == username.lower(), Usuario.email == email)
        )
    ).first()
    if taken is not None:
        same_name = taken.username.lower() == username.lower()
        raise DuplicateUsuario("username" if same_name else "email")
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
        condition = func.lower(Usuario.username) == identifier.lower()
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


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_refresh_token(usuario_id: int) -> str:
    """A new opaque refresh token for `usuario_id` (added to the session, not committed)."""
    raw = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    expires: timedelta = current_app.config["REFRESH_TOKEN_EXPIRES"]
    now = utcnow()
    db.session.add(
        RefreshToken(
            usuario_id=usuario_id, token_hash=_hash(raw), created_at=now, expires_at=now + expires
        )
    )
    return raw


def revoke_refresh_tokens(usuario_id: int, when: datetime | None = None) -> None:
    """Revoke every live refresh token of `usuario_id` (not committed)."""
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.usuario_id == usuario_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=when or utcnow())
    )


def lock_usuario(usuario_id: int) -> Usuario | None:
    """Lock the usuario's row (`SELECT ... FOR UPDATE`) and read it afresh.

    Rotation, logout and reuse detection take this lock first, so they run one
    after the other per usuario: a logout can no longer miss a rotated token
    that is inserted but not yet committed (it waits for that COMMIT, then its
    UPDATE sees the new row). SQLite ignores FOR UPDATE and serialises writers.
    """
    return db.session.scalars(
        select(Usuario)
        .where(Usuario.id == usuario_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def rotate_refresh_token(raw: str | None) -> tuple[Usuario, str]:
    """Spend `raw` and return its usuario with the next refresh token. Commits.

    The spend is one conditional UPDATE, so two concurrent uses of the same
    token cannot both succeed: the loser is treated as a reuse.
    """
    if not raw:
        raise RefreshRejected("missing")
    token_hash = _hash(raw)
    owner = db.session.scalar(
        select(RefreshToken.usuario_id).where(RefreshToken.token_hash == token_hash)
    )
    if owner is None:
        db.session.rollback()
        raise RefreshRejected("invalid")
    usuario = lock_usuario(owner)
    now = utcnow()
    spent = db.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.usuario_id)
    ).scalar_one_or_none()
    if spent is None:
        known = db.session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        ).first()
        if known is not None and known.used_at is not None:
            revoke_refresh_tokens(known.usuario_id, now)
            db.session.commit()
            raise RefreshRejected("reused")
        db.session.rollback()
        raise RefreshRejected("invalid")
    if usuario is None or not usuario.is_active:
        revoke_refresh_tokens(spent, now)
        db.session.commit()
        raise RefreshRejected("inactive")
    new_raw = issue_refresh_token(usuario.id)
    db.session.commit()
    return usuario, new_raw


PURGE_BATCH = 100


def record_revocation(jti: str, expires_at: datetime) -> None:
    """Keep a revoked access token's jti in the database (not committed).

    Expired rows are purged here, a bounded batch each time, so the table
    holds roughly the revocations of the last access-token lifetime.
    """
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
    if expires_at > now and db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, expires_at=expires_at))
        # Reaches Redis through the outbox, recorded in this same transaction.
        effect_after_commit(db.session, "revoke", jti, expires_at.timestamp())


def logout(usuario_id: int, jwt_payload: dict[str, Any]) -> None:
    """Revoke this access token and every refresh token of the usuario. Commits."""
    lock_usuario(usuario_id)
    revoke_refresh_tokens(usuario_id)
    jti, exp = str(jwt_payload["jti"]), float(jwt_payload["exp"])
    record_revocation(jti, datetime.fromtimestamp(exp, UTC))
    db.session.commit()
