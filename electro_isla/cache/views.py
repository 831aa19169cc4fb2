"""Cache admin endpoints: statistics across workers and a prefix-bounded clear."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from electro_isla.auth.permissions import admin_required
from electro_isla.blueprint import Blueprint
from electro_isla.cache import CacheUnavailable, cache_manager
from electro_isla.cache.schemas import CacheClearArgsSchema, CacheClearSchema, CacheStatsSchema

blp = Blueprint("cache", __name__, url_prefix="/api", description="Caché (admin)")


def documents(code: int):  # noqa: ANN201
    return blp.alt_response(code, response=HTTPStatus(code).name)


@blp.route("/admin/cache/stats/")
class CacheStats(MethodView):
    @admin_required
    @blp.response(200, CacheStatsSchema)
    @documents(401)
    @documents(403)
    def get(self) -> dict[str, Any]:
        """Cache statistics (admin)

        Hits, misses, fetches, invalidations and errors, in total and per cached
        name, counted across every worker process that shares the cache.
        """
        return cache_manager.get_stats()


@blp.route("/admin/cache/clear/")
class CacheClear(MethodView):
    @admin_required
    @blp.arguments(CacheClearArgsSchema, required=False)  # no body: clear everything
    @blp.response(200, CacheClearSchema)
    @documents(401)
    @documents(403)
    @documents(503)
    def post(self, args: dict[str, Any]) -> dict[str, int]:
        """Delete cached entries (admin)

        All of them, or those whose `<name>[:<row>]` matches `pattern`. Only this
        app's cached values go: rate-limit windows, token revocations, statistics
        counters and anything outside the key prefix stay.
        """
        try:
            deleted = cache_manager.invalidate_pattern(args.get("pattern") or "*")
        except CacheUnavailable:
            abort(503, message="The cache server is not answering; try again shortly.")
        return {"deleted": deleted}
