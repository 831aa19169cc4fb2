"""Another commit's code beside this tree's: its export, and a database of its own making.

The base-beside-head benchmarks (bench/catalogue.py, bench/outbox.py,
bench/estadisticas_ab.py, bench/hit_ab.py, bench/historia.py) run an older
commit's code from a `git archive` export. The schema moves with the code
(migration 0008 replaced tables that 3e70ac8's statistics read, which then
answered 500 on head's schema), so `tree_database` gives each tree its own
database, migrated by that tree's own migrations and filled by that tree's own
CLI, in a subprocess whose PYTHONPATH puts the tree's `electro_isla` first.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg

from electro_isla_testing.databases import libpq_url
from electro_isla_testing.servers import PostgresServer

ROOT = Path(__file__).resolve().parents[1]

# Run with the tree first on PYTHONPATH; argv = url, redis url, admin username
# ("" for none), then a CLI command line ("seed-demo --pedidos ...") or nothing.
PREPARE = """\
import sys, flask_migrate
from electro_isla import create_app
from electro_isla.config import Config
class C(Config):
    SECRET_KEY = "tree-database-" + "k" * 40
url, redis_url, admin, *cli = sys.argv[1:]
app = create_app(C, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario
with app.app_context():
    flask_migrate.upgrade()
if cli:
    r = app.test_cli_runner().invoke(args=cli)
    assert r.exit_code == 0, r.output
with app.app_context():
    if admin:
        u = Usuario(username=admin, email=admin + "@x.test", rol="admin")
        u.set_password("bench-password")
        db.session.add(u)
        db.session.commit()
    db.engine.dispose()
"""


@contextmanager
def exported(commit: str, repo: Path = ROOT) -> Iterator[Path]:
    """The code of `commit` (a `git archive` export) in a temp dir, removed on leaving."""
    with tempfile.TemporaryDirectory(prefix=f"ei-tree-{commit[:8]}-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def tree_database(
    server: PostgresServer,
    name: str,
    tree: Path,
    redis_url: str,
    *,
    cli: Sequence[str] = (),
    admin: str = "",
) -> str:
    """A new database `name` on `server`, made by `tree`'s code; its SQLAlchemy URL.

    Migrated by `tree`'s migrations, then `cli` run by `tree`'s CLI (e.g. `seed-demo
    --pedidos 3000 ... --seed 42`), then an admin named `admin` added if given.
    """
    with psycopg.connect(libpq_url(server.url("postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    subprocess.run(
        [sys.executable, "-c", PREPARE, url, redis_url, admin, *cli],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return url
