"""The statistics table (estadisticas/registro.py) is the one place that wires a statistic:
its endpoint, its warmer, its live event and its cached name all come from the entry."""

from __future__ import annotations

from electro_isla.cache import commands
from electro_isla.cache.registry import REGISTRY
from electro_isla.estadisticas.registro import CACHEADOS, ESTADISTICAS
from electro_isla.live.hub import STATS


def test_each_entry_is_served_warmed_watched_and_registered(app):
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for nombre, estadistica in ESTADISTICAS.items():
        assert f"/api/admin/estadisticas/{nombre}/" in rules, nombre
        assert commands.WARMERS[estadistica.cacheado] == estadistica.rendered
        assert estadistica.cacheado in REGISTRY
    # The live stream's events, in its order (its resume token depends on it).
    assert list(STATS.items()) == list(CACHEADOS.items())
    assert list(STATS) == ["ventas", "usuarios", "productos", "reporte"]


def test_cache_warm_names_no_function_by_string():
    assert all(callable(target) for target in commands.WARMERS.values())
