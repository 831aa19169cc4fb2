from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from electro_isla.db_types import UTCDateTime, utcnow
from electro_isla.extensions import db


class RefreshToken(db.Model):
    """A login's refresh-token family: the current member's SHA-256 and its sequence.

    Each refresh replaces the hash and increments `sequence` in place, so a
    login holds one row however often it refreshes (auth/refresh.py).
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_usuario_id", "usuario_id"),
        Index("uq_refresh_tokens_family", "family", unique=True),
        Index("ix_refresh_tokens_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RevokedToken(db.Model):
    """A logged-out login (`fam:<login>`) or access token (its jti), until every token it
    covers would have expired anyway (auth/tokens.py: revocation_keys).

    Redis answers the per-request check; this table answers it while Redis is
    unreachable, so an outage never revives a logged-out token.
    """

    __tablename__ = "revoked_tokens"
    __table_args__ = (Index("ix_revoked_tokens_expires_at", "expires_at"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
