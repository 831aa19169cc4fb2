"""Cache CLI: cache-stats, cache-clear, cache-warm."""

from __future__ import annotations

from flask import Blueprint

cache_cli = Blueprint("cache_cli", __name__, cli_group=None)
