"""Electro Isla API: the app factory reads as the table of contents.

The factory imports what it wires inside its functions: this file runs before
any submodule is imported, so imports at its top would load every blueprint
(and the whole cache layer) for `import electro_isla.fields`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from electro_isla.config import Config, config_class_from_env, load_environment


def create_app(
    config: type[Config] | None = None, overrides: dict[str, Any] | None = None
) -> Flask:
    from electro_isla.routing import App

    config = config or config_class_from_env()
    app = App(__name__, instance_relative_config=False)
    app.config.from_object(config)
    load_environment(app.config)
    app.config.update(overrides or {})
    config.finalize(app.config)
    app.url_map.strict_slashes = True
    register_proxy_fix(app)

    from electro_isla import cache, docs, errors, headers, json, logs, observability
    from electro_isla.shared_store import register_shared_store

    json.register_json_provider(app)
    logs.register_logging(app)
    register_extensions(app)
    errors.register_error_handlers(app)
    headers.register_headers(app)
    register_shared_store(app)
    cache.register_cache(app)
    register_live(app)
    register_blueprints(app)
    docs.register_docs_assets(app)
    observability.register_observability(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the instances of electro_isla/extensions.py; the API learns the project's fields."""
    import electro_isla.models  # noqa: F401  (every table known before Alembic looks)
    from electro_isla.extensions import api, db, jwt, migrate
    from electro_isla.openapi import register_openapi_conventions
    from electro_isla.rendering import ConditionalGetPlugin

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", "migrations")))
    api.init_app(app, spec_kwargs={"extra_plugins": [ConditionalGetPlugin()]})
    register_openapi_conventions(api)
    jwt.init_app(app)


def register_proxy_fix(app: Flask) -> None:
    """Behind trusted proxies, the client address (rate limits, logs) is X-Forwarded-For's.

    Only when the TCP peer is one of TRUSTED_PROXIES; from anyone else the
    X-Forwarded-* headers are dropped (see electro_isla/proxy.py).
    """
    from electro_isla.config import parse_trusted_proxies
    from electro_isla.proxy import TrustedProxies

    proxies = parse_trusted_proxies(app.config["TRUSTED_PROXIES"])
    app.wsgi_app = TrustedProxies(app.wsgi_app, proxies)  # type: ignore[method-assign]


def register_live(app: Flask) -> None:
    """Live statistics (electro_isla/live): the per-process hub and its limits."""
    from electro_isla.live import register_live as register

    register(app)


def register_blueprints(app: Flask) -> None:
    from electro_isla.auth.views import blp as auth_blp
    from electro_isla.cache.views import blp as cache_blp
    from electro_isla.catalogo.views import blp as catalogo_blp
    from electro_isla.estadisticas.views import blp as estadisticas_blp
    from electro_isla.extensions import api
    from electro_isla.live.stream import blp as live_blp
    from electro_isla.pedidos.views import blp as pedidos_blp
    from electro_isla.usuarios.views import blp as usuarios_blp

    for blp in (
        auth_blp,
        catalogo_blp,
        pedidos_blp,
        usuarios_blp,
        estadisticas_blp,
        live_blp,
        cache_blp,
    ):
        api.register_blueprint(blp)
    # The operator console is an HTML page, not part of the API's OpenAPI document.
    from electro_isla.consola.views import blp as consola_blp

    app.register_blueprint(consola_blp)


def register_commands(app: Flask) -> None:
    from electro_isla.cache.commands import cache_cli
    from electro_isla.cli import guard_migration_commands
    from electro_isla.commands import app_cli
    from electro_isla.estadisticas.commands import estadisticas_cli

    guard_migration_commands()
    app.register_blueprint(app_cli)
    app.register_blueprint(cache_cli)
    app.register_blueprint(estadisticas_cli)
