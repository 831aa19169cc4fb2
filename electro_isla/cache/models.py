"""The outbox: shared-state effects a committed transaction owes Redis, until applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from electro_isla.db_types import UTCDateTime, utcnow
from electro_isla.extensions import db


class OutboxEntry(db.Model):
    """One effect (a generation bump, a token revocation) written in its writer's transaction.

    Deleted by id once applied to Redis, by its writer's deleter thread or by any
    process's drain; a row added after a drain looked is never deleted by that drain.
    """

    __tablename__ = "cache_pending"
    __table_args__ = (Index("ix_cache_pending_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(100))
    # "bump": `target` is a generation key; "revoke": a jti, until `expires_at`.
    kind: Mapped[str] = mapped_column(String(16), default="bump", server_default="bump")
    target: Mapped[str] = mapped_column(String(400))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
