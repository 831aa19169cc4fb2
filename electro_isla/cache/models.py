"""The invalidations a host could not apply, kept where every host sees them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from electro_isla.db_types import UTCDateTime, utcnow
from electro_isla.extensions import db


class PendingInvalidation(db.Model):
    """One generation bump that failed (or was not replicated), until a worker replays it.

    One row per failed add, even for a key already waiting: a replay deletes
    the rows it read by id, never a row added after it looked.
    """

    __tablename__ = "cache_pending"
    __table_args__ = (Index("ix_cache_pending_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(100))
    gen_key: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
