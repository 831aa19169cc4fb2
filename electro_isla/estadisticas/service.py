"""Dashboard statistics: cached, and computed from the rollups on a miss.

A miss reads the rollup tables the database keeps in step with every write
(estadisticas/rollups.py), so its cost does not grow with the number of orders;
estadisticas/crudo.py computes the same figures from the raw rows and is what
`flask estadisticas-check` compares with. The cache registry still lists the
source tables (pedidos, detalles_pedido, usuarios, productos): the rollups are
written by triggers inside those writes, never by the ORM.

Each function takes an optional `render` (see CacheManager.get): the views pass
one that renders the response body and ETag at fetch time, so a HIT only wraps
the stored text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from electro_isla.cache import cache_manager
from electro_isla.estadisticas import crudo, rollups
from electro_isla.estadisticas.ventana import Meses, meses

Render = Callable[[Any], Any] | None


def _params(ventana: Meses) -> dict[str, str]:
    # The window moves with the calendar: a new month must never reuse last month's entry.
    return {"mes": ventana.actual}


def estadisticas_ventas(render: Render = None) -> Any:
    ventana = meses()
    return cache_manager.get(
        "estadisticas_ventas",
        lambda: rollups.ventas(ventana),
        params=_params(ventana),
        render=render,
    )


def estadisticas_usuarios(render: Render = None) -> Any:
    ventana = meses()
    return cache_manager.get(
        "estadisticas_usuarios",
        lambda: rollups.usuarios(ventana),
        params=_params(ventana),
        render=render,
    )


def estadisticas_productos(render: Render = None) -> Any:
    # The catalogue is small and read directly: there is no history to roll up.
    return cache_manager.get("estadisticas_productos", crudo.productos, render=render)


def reporte_general(render: Render = None) -> Any:
    ventana = meses()
    return cache_manager.get(
        "reporte_general",
        lambda: rollups.reporte(ventana),
        params=_params(ventana),
        render=render,
    )
