"""Refresh tokens as families: one row per login, whatever the number of refreshes.

A token reads `<family>.<sequence>.<secret>`; only its SHA-256 is stored, on
the family's row, with the sequence of the member that may be used next.
Using it replaces the row's hash and sequence with the next member's (one
conditional UPDATE, so two concurrent uses cannot both win). A token of a known
family whose hash is not the row's and whose sequence is lower was already
used: it was copied, and every refresh token of the usuario is revoked (the
contract's reuse rule). Rows past `expires_at` are purged a bounded batch at a
time, and a usuario keeps at most REFRESH_FAMILIES_PER_USUARIO logins.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from electro_isla.auth.models import RefreshToken
from electro_isla.db_types import utcnow
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario

REFRESH_TOKEN_BYTES = 32
PURGE_BATCH = 100
# Logins beyond these (oldest first) lose their refresh token: a bound on rows per usuario.
REFRESH_FAMILIES_PER_USUARIO = 20


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked or already used."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _member(family: str, sequence: int) -> str:
    return f"{family}.{sequence}.{secrets.token_urlsafe(REFRESH_TOKEN_BYTES)}"


def login_of(raw: str) -> str:
    """The login a refresh token this module issued belongs to, as an access token names
    it: a digest of the family, never the family itself (with a lower sequence, the family
    passes for a reused cookie here and revokes every login of the usuario; a reviewer
    did so from an access token's claim)."""
    return hashlib.sha256(raw.partition(".")[0].encode()).hexdigest()[:32]


def _parse(raw: str) -> tuple[str, int] | None:
    """(family, sequence) of a well-formed token, else None."""
    family, _, rest = raw.partition(".")
    sequence, _, secret = rest.partition(".")
    if len(family) != 32 or not secret or not (sequence.isascii() and sequence.isdigit()):
        return None
    if len(sequence) > 9:
        return None
    return family, int(sequence)


def _expiry(now: datetime) -> datetime:
    expires: timedelta = current_app.config["REFRESH_TOKEN_EXPIRES"]
    return now + expires


def purge_expired(now: datetime) -> None:
    """Delete up to PURGE_BATCH expired families (not committed)."""
    oldest = select(RefreshToken.id).where(RefreshToken.expires_at <= now).limit(PURGE_BATCH)
    db.session.execute(
        delete(RefreshToken)
        .where(RefreshToken.id.in_(oldest))
        .execution_options(synchronize_session=False)
    )


def issue_refresh_token(usuario_id: int) -> str:
    """Start a family for a new login of `usuario_id` (added to the session, not committed)."""
    now = utcnow()
    purge_expired(now)
    newest = (
        select(RefreshToken.id)
        .where(RefreshToken.usuario_id == usuario_id)
        .order_by(RefreshToken.id.desc())
        .limit(REFRESH_FAMILIES_PER_USUARIO - 1)
    )
    db.session.execute(
        delete(RefreshToken)
        .where(RefreshToken.usuario_id == usuario_id, RefreshToken.id.not_in(newest))
        .execution_options(synchronize_session=False)
    )
    family = uuid.uuid4().hex
    raw = _member(family, 0)
    db.session.add(
        RefreshToken(
            usuario_id=usuario_id,
            family=family,
            sequence=0,
            token_hash=_hash(raw),
            created_at=now,
            expires_at=_expiry(now),
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


def _reused(raw: str) -> int | None:
    """The usuario whose family `raw` is an older member of, else None."""
    parsed = _parse(raw)
    if parsed is None:
        return None
    family, sequence = parsed
    row = db.session.execute(
        select(RefreshToken.usuario_id, RefreshToken.sequence).where(RefreshToken.family == family)
    ).first()
    if row is None or sequence >= row.sequence:
        return None
    return row.usuario_id


def rotate_refresh_token(raw: str | None) -> tuple[Usuario, str]:
    """Spend `raw` and return its usuario with the family's next member. Commits."""
    if not raw:
        raise RefreshRejected("missing")
    token_hash = _hash(raw)
    owner = db.session.scalar(
        select(RefreshToken.usuario_id).where(RefreshToken.token_hash == token_hash)
    )
    if owner is None:
        owner = _reused(raw)
    if owner is None:
        db.session.rollback()
        raise RefreshRejected("invalid")
    usuario = lock_usuario(owner)
    now = utcnow()
    current = db.session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    ).first()
    if current is None:
        # Not the family's current member (any more): a copy, or a lost race.
        if _reused(raw) is not None:
            revoke_refresh_tokens(owner, now)
            db.session.commit()
            raise RefreshRejected("reused")
        db.session.rollback()
        raise RefreshRejected("invalid")
    if current.revoked_at is not None or current.expires_at <= now:
        db.session.rollback()
        raise RefreshRejected("invalid")
    if usuario is None or not usuario.is_active:
        revoke_refresh_tokens(owner, now)
        db.session.commit()
        raise RefreshRejected("inactive")
    sequence = current.sequence + 1
    new_raw = _member(current.family, sequence)
    spent = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == current.id, RefreshToken.token_hash == token_hash)
        .values(token_hash=_hash(new_raw), sequence=sequence, expires_at=_expiry(now))
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # pragma: no cover  (the usuario lock serialises rotations)
        db.session.rollback()
        raise RefreshRejected("invalid")
    purge_expired(now)
    db.session.commit()
    return usuario, new_raw
