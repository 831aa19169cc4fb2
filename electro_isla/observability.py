"""Health, readiness and metrics endpoints.

`/healthz` says the process is alive (restart it if not); `/readyz` says it
can serve (route traffic to it): the database must answer, the cache may be
degraded because requests then fall back to the database.
"""

from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import text

from electro_isla.extensions import db


def register_observability(app: Flask) -> None:
    from electro_isla.metrics import register_metrics

    register_metrics(app)

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():  # noqa: ANN202
        from electro_isla.cache import cache_manager

        try:
            db.session.execute(text("SELECT 1"))
            database = "ok"
        except Exception:  # noqa: BLE001  any failure means not ready
            db.session.rollback()
            database = "unavailable"
        cache = "ok" if cache_manager.ping() else "degraded"
        code = 200 if database == "ok" else 503
        return jsonify(database=database, cache=cache), code
