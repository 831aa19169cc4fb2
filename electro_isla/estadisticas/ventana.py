"""The 12-month window in the store's time zone, and how UTC days fall into it.

Months are calendar months in `TIMEZONE`; their boundaries, converted to UTC,
may fall inside a UTC day (America/Havana at 04:00 or 05:00 UTC, Asia/Kolkata
at 18:30, Asia/Kathmandu at 18:15). The rollups count per UTC day, so a day
without a boundary belongs wholly to one month, and a day with one ("cut") is
split: the shorter side is read from the raw rows through the timestamp index
and belongs to one month, the rest of the day (rollup minus raw) to the other.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from electro_isla.db_types import utcnow

MESES = 12
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Meses:
    """The 12-month window: labels oldest first and 13 UTC boundaries.

    `limites[i]` is the first instant of month `etiquetas[i]` in the store's
    time zone; `limites[12]` is the first instant of next month.
    """

    etiquetas: tuple[str, ...]
    limites: tuple[datetime, ...]

    @property
    def actual(self) -> str:
        return self.etiquetas[-1]

    @property
    def inicio_mes_actual(self) -> datetime:
        return self.limites[-2]

    @property
    def fin(self) -> datetime:
        return self.limites[-1]


def meses(now: datetime | None = None, zona: str | None = None) -> Meses:
    """The current calendar month in `zona` and the 11 before it."""
    tz = ZoneInfo(zona or current_app.config["TIMEZONE"])
    local = (now or utcnow()).astimezone(tz)
    index = local.year * 12 + local.month - 1
    starts = [divmod(index - k, 12) for k in range(MESES - 1, -2, -1)]
    # fold=0: the first local midnight of the 1st when a DST change repeats it.
    limites = tuple(datetime(y, m + 1, 1, tzinfo=tz).astimezone(UTC) for y, m in starts)
    etiquetas = tuple(f"{y:04d}-{m + 1:02d}" for y, m in starts[:-1])
    return Meses(etiquetas, limites)


def mes_actual(now: datetime | None = None, zona: str | None = None) -> str:
    """`meses(now, zona).actual` without the window's 13 boundaries (what a HIT's key needs)."""
    local = (now or utcnow()).astimezone(ZoneInfo(zona or current_app.config["TIMEZONE"]))
    return f"{local.year:04d}-{local.month:02d}"


def medianoche(dia: date) -> datetime:
    return datetime.combine(dia, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Corte:
    """A UTC day with a month boundary inside: [desde, hasta) is read from the raw rows.

    The raw part belongs to month `mes_crudo`, the rest of the day to `mes_resto`
    (either may be outside the window: -1 or 12).
    """

    dia: date
    desde: datetime
    hasta: datetime
    mes_crudo: int
    mes_resto: int


def cortes(ventana: Meses) -> dict[date, Corte]:
    """The cut days of the window's 13 boundaries (none when all fall on UTC midnights)."""
    found = {}
    for j, limite in enumerate(ventana.limites):
        dia = limite.date()
        inicio = medianoche(dia)
        if limite == inicio:
            continue
        if limite - inicio <= inicio + DAY - limite:
            found[dia] = Corte(dia, inicio, limite, j - 1, j)
        else:
            found[dia] = Corte(dia, limite, inicio + DAY, j, j - 1)
    return found


def mes_del_dia(ventana: Meses, dia: date) -> int:
    """Window index (-1 before, 12 after) of a UTC day with no boundary inside it."""
    return bisect.bisect_right(ventana.limites, medianoche(dia)) - 1


def primer_dia(ventana: Meses) -> date:
    return ventana.limites[0].date()


def ultimo_dia(ventana: Meses) -> date:
    return ventana.fin.date()
