"""The console's charts: SVG rendered by pygal from the cached statistics.

A chart is drawn from the statistic's cached rendering (the same body the
endpoint answers), so asking for one never computes a statistic: it is a cache
HIT like the endpoint's. Drawings are kept per (chart, ETag) in a small LRU, so
many open consoles cost one drawing per change per process. pygal's JavaScript
is turned off (`js=[]`): the page shows each SVG as an image, which runs no script.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pygal
from pygal.style import Style

ESTILO = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1f2933",
    foreground_strong="#111827",
    foreground_subtle="#52606d",
    opacity=".9",
    opacity_hover="1",
    colors=("#1d4ed8", "#b45309", "#047857", "#9d174d", "#6d28d9", "#0e7490"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    value_font_size=13,
    title_font_size=16,
)

COMUN: dict[str, Any] = {
    "style": ESTILO,
    "js": [],  # no script from kozea.github.io (or anywhere): the page works offline
    "disable_xml_declaration": True,
    "width": 640,
    "height": 320,
    "margin": 12,
    "show_legend": False,
    "max_scale": 6,  # at most six graduations: readable when the chart is phone-sized
    "no_data_text": "Sin datos",  # pygal's own is English (a probe on an empty shop)
}


def _cuentas(chart: pygal.Graph, valores: list[int]) -> pygal.Graph:
    """Whole-number graduations for counts (pygal drew 0.2, 0.4… for a count of 1 and
    left the top value unlabelled), at most six of them."""
    top = max(valores, default=0)
    if top <= 0:  # nothing yet (an empty shop, a stock of 0): not 0, 0.2 … 1
        chart.y_labels = [0, 1]
    else:
        bruto = top / 5  # a step of 1, 2 or 5 times a power of ten, at least this
        escala = 10 ** math.floor(math.log10(bruto)) if bruto >= 1 else 1
        paso = next(m * escala for m in (1, 2, 5, 10) if m * escala >= bruto)
        chart.y_labels = list(range(0, paso * math.ceil(top / paso) + 1, paso))
    return chart


def _ventas_por_mes(doc: dict[str, Any]) -> pygal.Graph:
    chart = pygal.Bar(**COMUN, x_label_rotation=-45, y_title="Ventas")
    chart.x_labels = [m["mes"] for m in doc["ventas_por_mes"]]
    totales = [float(m["total"]) for m in doc["ventas_por_mes"]]
    chart.add("Ventas", totales)
    if not any(totales):  # no sale in the window: an axis of 0 and 1, not 0, 0.2 … 1
        chart.y_labels = [0, 1]
    return chart


def _metodos_pago(doc: dict[str, Any]) -> pygal.Graph:
    chart = pygal.Pie(**{**COMUN, "show_legend": True}, inner_radius=0.45, legend_at_bottom=True)
    for metodo in doc["metodos_pago"]:
        chart.add(metodo["metodo_pago"], metodo["count"])
    return chart


def _usuarios_por_mes(doc: dict[str, Any]) -> pygal.Graph:
    chart = pygal.Bar(**COMUN, x_label_rotation=-45, y_title="Nuevos")
    chart.x_labels = [m["mes"] for m in doc["usuarios_por_mes"]]
    nuevos = [m["nuevos"] for m in doc["usuarios_por_mes"]]
    chart.add("Nuevos", nuevos)
    return _cuentas(chart, nuevos)


def _usuarios_por_rol(doc: dict[str, Any]) -> pygal.Graph:
    chart = pygal.HorizontalBar(**COMUN)
    chart.x_labels = [r["rol"] for r in doc["usuarios_por_rol"]]
    usuarios = [r["count"] for r in doc["usuarios_por_rol"]]
    chart.add("Usuarios", usuarios)
    return _cuentas(chart, usuarios)


def _stock_por_categoria(doc: dict[str, Any]) -> pygal.Graph:
    chart = pygal.HorizontalBar(**COMUN)
    chart.x_labels = [c["categoria"] for c in doc["productos_por_categoria"]]
    stock = [c["stock_total"] for c in doc["productos_por_categoria"]]
    chart.add("Stock", stock)
    return _cuentas(chart, stock)


@dataclass(frozen=True)
class Grafico:
    estadistica: str  # the statistics endpoint it is drawn from
    dibujar: Callable[[dict[str, Any]], pygal.Graph]


GRAFICOS: dict[str, Grafico] = {
    "ventas_por_mes": Grafico("ventas", _ventas_por_mes),
    "metodos_pago": Grafico("ventas", _metodos_pago),
    "usuarios_por_mes": Grafico("usuarios", _usuarios_por_mes),
    "usuarios_por_rol": Grafico("usuarios", _usuarios_por_rol),
    "stock_por_categoria": Grafico("productos", _stock_por_categoria),
}


@lru_cache(maxsize=32)
def dibujar(nombre: str, etag: str, body: str) -> str:
    """The SVG of chart `nombre` for the statistic's body tagged `etag` (drawn once per tag)."""
    del etag  # part of the key only: the body it tags is what is drawn
    return GRAFICOS[nombre].dibujar(json.loads(body)).render(is_unicode=True)
