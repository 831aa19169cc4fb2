"""Health, readiness and metrics endpoints.

`/healthz` says the process is alive (restart it if not); `/readyz` says it
can serve (route traffic to it): the database must answer, the cache may be
degraded because requests then fall back to the database. `cache: ok` only
while this process really uses the configured shared store (it is pinged,
through the one breaker of electro_isla.shared_store): a worker that has not
reached Redis since it started says `degraded`.
"""

from __future__ import annotations

from flask import Flask
from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import text

from electro_isla.blueprint import Blueprint
from electro_isla.cache import cache_manager
from electro_isla.extensions import api, db
from electro_isla.metrics import register_metrics

blp = Blueprint("operaciones", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    database = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    cache = fields.String(required=True, metadata={"enum": ["ok", "degraded"]})


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Liveness: the process answers"""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="The database is unreachable")
    def get(self) -> tuple[dict[str, str], int]:
        """Readiness: the database answers; a dead cache only degrades"""
        try:
            db.session.execute(text("SELECT 1"))
            database = "ok"
        except Exception:  # noqa: BLE001  any failure means not ready
            db.session.rollback()
            database = "unavailable"
        cache = "ok" if cache_manager.ping() else "degraded"
        return {"database": database, "cache": cache}, 200 if database == "ok" else 503


def register_observability(app: Flask) -> None:
    register_metrics(app)
    api.register_blueprint(blp)
