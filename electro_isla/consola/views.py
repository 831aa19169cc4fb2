"""GET /admin/ (the console page), its static assets, and its charts as SVG.

The page's scripts talk to the API with the operator's bearer token; nothing
here reads a cookie or keeps a session. The Content-Security-Policy lets the
page load nothing but its own origin's files: no CDN, no inline script.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from electro_isla.auth.permissions import staff_required
from electro_isla.consola.graficos import GRAFICOS, dibujar
from electro_isla.estadisticas.views import rendered

blp = Blueprint(
    "consola",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# A chart opened on its own is an SVG document: it may run nothing at all.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@blp.get("/")
def consola() -> Response:
    """The operator console (public page; its data needs a staff login)."""
    response = Response(render_template("consola/index.html"))
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/graficos/<nombre>.svg")
@staff_required
def grafico(nombre: str) -> Response:
    """One chart, drawn from the statistic's cached rendering (a cache HIT, never a fetch)."""
    if nombre not in GRAFICOS:
        abort(404)
    fuente = rendered(GRAFICOS[nombre].estadistica)
    etag = f"{fuente['etag']}-{nombre}"
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(
            dibujar(nombre, fuente["etag"], fuente["body"]), mimetype="image/svg+xml"
        )
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Content-Security-Policy"] = SVG_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
