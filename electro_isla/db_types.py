"""Column types shared by every domain, and the money helpers beside the money type."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import DateTime, Numeric
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
ZERO = Decimal("0")


def utcnow() -> datetime:
    return datetime.now(UTC)


def money(value: Decimal | int | str) -> Decimal:
    """Round to cents the way a till does (half up), never through float."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def exacto(value: Decimal | float | int | None) -> Decimal:
    """A SQL SUM as Decimal; SQL's NULL for no rows is 0."""
    return ZERO if value is None else Decimal(str(value))


def dinero(value: Decimal | float | int | None) -> Decimal:
    """An exact SUM rounded to cents."""
    return money(exacto(value))


def de_centimos(value: int | None) -> Decimal:
    """An integer count of cents (the rollups' money) as Decimal."""
    return ZERO if value is None else Decimal(int(value)) / 100


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN201
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN201
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = Numeric(12, 2, asdecimal=True)
