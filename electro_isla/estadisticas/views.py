"""The admin dashboard: one cached, staff-only endpoint per statistic of the table.

Each entry of estadisticas/registro.py becomes GET /api/admin/estadisticas/<nombre>/,
answered with its cached rendering: the body and ETag rendered when the value was
fetched (as product detail does, electro_isla/rendering.py), so a HIT needs no
schema dump, JSON rendering or ETag hash. `@blp.response` documents the schema.

With `If-None-Match` and `Prefer: wait=N` a request is held until the figures
change (live/wait.py, API.md "Live statistics").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response
from flask.views import MethodView

from electro_isla.auth.permissions import staff_required
from electro_isla.blueprint import Blueprint
from electro_isla.estadisticas.registro import ESTADISTICAS, Estadistica, rendered
from electro_isla.live.wait import answer, held_on_the_hubs_tag

blp = Blueprint(
    "estadisticas",
    __name__,
    url_prefix="/api/admin/estadisticas",
    description="Dashboard statistics (staff only); months in the store's TIMEZONE",
)

# The view class names (and so the endpoint names) the statistics always had.
CLASES = {
    "ventas": "EstadisticasVentas",
    "usuarios": "EstadisticasUsuarios",
    "productos": "EstadisticasProductos",
    "reporte": "ReporteGeneral",
}


# API.md "Live statistics", documented through flask-smorest's public decorators.
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=<seconds>` (RFC 7240) with If-None-Match: hold the request while"
    " that tag is current, until the figures change (200) or the wait ends (304). Capped"
    " by LIVE_MAX_WAIT (never above 60).",
    "schema": {"type": "string", "example": "wait=30"},
}


def preference_applied() -> dict[str, Any]:
    """A fresh header object per response (the ETag plugin adds to the same mapping)."""
    return {
        "Preference-Applied": {
            "description": "`wait=<seconds allowed>` when the request was held; absent when"
            " the server could not hold it (shared cache unavailable, waiting limit"
            " reached): the client polls instead.",
            "schema": {"type": "string"},
        }
    }


def _asking_ahead(
    estadistica: Estadistica, view: Callable[..., Response]
) -> Callable[..., Response]:
    """The statistic's lookup goes in the token check's round trip (cache/ahead.py):
    a HIT is then one round trip, the check, the role and the figures; the role is
    still checked before the figures are answered. Not for a wait the hub's copy
    answers (a watcher sending its wait again after a change): nothing to look up."""

    @wraps(view)
    def asking(*args: Any, **kwargs: Any) -> Response:
        if not held_on_the_hubs_tag(estadistica.nombre):
            estadistica.ask_ahead()
        return view(*args, **kwargs)

    return asking


def _vista(estadistica: Estadistica) -> type[MethodView]:
    """The MethodView of one statistic, documented from its entry."""
    nombre = estadistica.nombre

    def get(self: MethodView) -> Response:
        return answer(nombre, rendered)

    get.__doc__ = estadistica.resumen
    # The 304 as `conditional` documents it, plus the header a held request answers with.
    not_modified = blp.alt_response(
        304,
        description="Not Modified: the tag is current (after the wait, when one was held)",
        headers=preference_applied(),
    )
    get = blp.doc(parameters=[PREFER])(
        not_modified(
            blp.response(200, estadistica.schema, headers=preference_applied())(
                blp.alt_response(401, description="Not authenticated")(
                    blp.alt_response(403, description="Not staff")(
                        _asking_ahead(estadistica, staff_required(get))
                    )
                )
            )
        )
    )
    return type(CLASES[nombre], (MethodView,), {"get": get, "__module__": __name__})


for _estadistica in ESTADISTICAS.values():
    blp.route(f"/{_estadistica.nombre}/")(_vista(_estadistica))
