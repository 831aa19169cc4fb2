"""An in-process app for timing a request (a statistics MISS, a HIT), and an admin's headers.

bench/estadisticas_ab.py, bench/hit_ab.py and bench/historia.py run this in a
subprocess with PYTHONPATH on a base commit's tree: `electro_isla` is then
whichever tree comes first on sys.path, so it is imported here inside the
function, never at the top.
"""

from __future__ import annotations

from typing import Any

BENCH_SECRET_KEY = "bench-secret-key-that-is-long-enough-for-hs256"  # noqa: S105
ADMIN_USERNAME = "bench-admin"


def miss_app(
    database_url: str, redis_url: str, *, prefix: str, log_dir: str, timezone: str | None = None
) -> tuple[Any, dict[str, str]]:
    """The app on the seeded database (ADMIN_USERNAME exists) and that admin's headers.

    `timezone` None keeps the configured TIMEZONE."""
    from electro_isla import create_app
    from electro_isla.auth.service import issue_access_token
    from electro_isla.config import Config
    from electro_isla.extensions import db
    from electro_isla.usuarios.models import Usuario

    class BenchConfig(Config):
        SECRET_KEY = BENCH_SECRET_KEY

    app = create_app(
        BenchConfig,
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": prefix,
            "LOG_DIR": log_dir,
            "REDIS_SOCKET_TIMEOUT": 5.0,
            **({"TIMEZONE": timezone} if timezone else {}),
        },
    )
    with app.app_context():
        admin = db.session.scalars(
            db.select(Usuario).where(Usuario.username == ADMIN_USERNAME)
        ).one()
        headers = {"Authorization": f"Bearer {issue_access_token(admin)}"}
        db.session.remove()
    return app, headers
