"""Swagger UI's assets served by the app itself, so /api/docs/ works without internet.

The files come from the `flask-swagger-ui` distribution (a pinned swagger-ui-dist
build inside a PyPI package, installed from pyproject.toml); flask-smorest's page
loads them from SWAGGER_UI_ASSETS_URL instead of a public CDN.
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Flask

SWAGGER_UI_ASSETS_URL = "/api/docs/swagger-ui/"


def register_docs_assets(app: Flask) -> None:
    dist = files("flask_swagger_ui") / "dist"
    assets = Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(dist),
        static_url_path=SWAGGER_UI_ASSETS_URL.rstrip("/"),
    )
    app.register_blueprint(assets)
