"""The four dashboard statistics, one entry each: the table everything reads.

An entry names a statistic (its URL segment and live-event name), the cached
name the cache registry lists for it, its response schema, and its fetch: the
figures from the rollups the database keeps in step with every write
(estadisticas/rollups.py), so a MISS does not grow with the number of orders;
productos reads the small catalogue directly (estadisticas/inventario.py).

The views (estadisticas/views.py), `flask cache-warm` (each entry registers its
warmer here), `flask estadisticas-check` (estadisticas/operaciones.py), the live
hub (electro_isla/live/) and the console (electro_isla/consola/) all read this
table; estadisticas/crudo.py is only the check's independent reference.

`Estadistica.rendered()` is the cached entry the views answer from: the body and
ETag rendered at fetch time (electro_isla/rendering.py), so a HIT only wraps the
stored text. `valor()` is the plain cached value, for callers that dump it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from marshmallow import Schema

from electro_isla.cache import cache_manager
from electro_isla.cache.commands import warmer
from electro_isla.db_types import utcnow
from electro_isla.estadisticas import inventario, rollups
from electro_isla.estadisticas.instantanea import una_instantanea
from electro_isla.estadisticas.schemas import (
    EstadisticasProductosSchema,
    EstadisticasUsuariosSchema,
    EstadisticasVentasSchema,
    ReporteGeneralSchema,
)
from electro_isla.estadisticas.ventana import Meses, mes_actual, meses
from electro_isla.rendering import renderer

Render = Callable[[Any], Any] | None


def clave_del_mes(now: datetime | None = None) -> dict[str, str]:
    """A per-month entry's key: the month, and the zone that drew its boundaries (an
    operator's probe: a host with TIMEZONE=Asia/Kathmandu answered the UTC host's month)."""
    return {"mes": mes_actual(now), "zona": current_app.config["TIMEZONE"]}


@dataclass(frozen=True)
class Estadistica:
    """One statistic: where its figures come from, how they are answered, what is cached."""

    nombre: str  # URL segment under /api/admin/estadisticas/ and live event name
    cacheado: str  # cached name in electro_isla/cache/registry.py
    schema: type[Schema]
    fetch: Callable[[Meses | None], dict[str, Any]]  # the figures for a window (from the rollups)
    resumen: str  # the endpoint's OpenAPI summary
    por_mes: bool = True  # cached per current month: a new month never reuses last month's
    render: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "render", renderer(self.schema()))

    def valor(self, render: Render = None) -> Any:
        """The cached figures (rendered by `render` when given), fetched on a miss.

        The key needs only the month's label; the window (13 time-zone
        conversions, most of a HIT's own work) is built on a miss, for the same instant.
        """
        if not self.por_mes:
            return cache_manager.get(self.cacheado, lambda: self.figuras(None), render=render)
        now = utcnow()
        return cache_manager.get(
            self.cacheado,
            lambda: self.figuras(meses(now)),
            params=clave_del_mes(now),
            render=render,
        )

    def figuras(self, ventana: Meses | None) -> dict[str, Any]:
        """The fetch, all its statements in one snapshot (estadisticas/instantanea.py)."""
        return una_instantanea(lambda: self.fetch(ventana))

    def rendered(self) -> Any:
        """The cached rendering the view answers with ({etag, body})."""
        return self.valor(render=self.render)

    def ask_ahead(self) -> None:
        """Have the token check look the rendering up in its round trip (cache/ahead.py)."""
        params = clave_del_mes() if self.por_mes else None
        cache_manager.ask_ahead(self.cacheado, params=params, rendered=True)


def _productos(_ventana: Meses | None) -> dict[str, Any]:
    # Looked up on each call, so that a test can stand in for the catalogue read.
    return inventario.productos()


ESTADISTICAS: dict[str, Estadistica] = {
    e.nombre: e
    for e in (
        Estadistica(
            "ventas",
            "estadisticas_ventas",
            EstadisticasVentasSchema,
            rollups.ventas,
            "Sales by month, best-selling products, payment methods, mean ticket",
        ),
        Estadistica(
            "usuarios",
            "estadisticas_usuarios",
            EstadisticasUsuariosSchema,
            rollups.usuarios,
            "New users by month, users by role, most active buyers, retention",
        ),
        Estadistica(
            "productos",
            "estadisticas_productos",
            EstadisticasProductosSchema,
            _productos,
            "Active products by category, low stock, inventory value, most valuable stock",
            por_mes=False,  # the catalogue has no month
        ),
        Estadistica(
            "reporte",
            "reporte_general",
            ReporteGeneralSchema,
            rollups.reporte,
            "One-page summary: users, products, orders and income, this month and overall",
        ),
    )
}

# What each statistic is cached as (the live hub watches these names).
CACHEADOS: dict[str, str] = {e.nombre: e.cacheado for e in ESTADISTICAS.values()}


def rendered(nombre: str) -> Any:
    """The statistic's cached rendering ({etag, body}), fetched on a miss."""
    return ESTADISTICAS[nombre].rendered()


# cache-warm fills the entries the views read (rendered), not the plain values.
for _e in ESTADISTICAS.values():
    warmer(_e.cacheado)(_e.rendered)
