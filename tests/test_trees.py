"""electro_isla_testing/trees.py: a commit's code in a temp dir, and a database per tree.

The base-beside-head benchmarks stand on these: since migration 0008 a base
commit's statistics read tables head's schema no longer has, so each tree must
get a database its own migrations made, seeded alike.
"""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from electro_isla_testing.databases import libpq_url
from electro_isla_testing.servers import PostgresServer
from electro_isla_testing.trees import ROOT, exported, tree_database

BEFORE_0008 = "3e70ac8"  # issue 17's base commit: migrations up to 0007
SEED = ["seed-demo", "--pedidos", "300", "--usuarios", "60", "--productos", "80"]
SEED += ["--meses", "3", "--seed", "42"]


def shown(commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"], capture_output=True, check=True
    ).stdout


def test_an_export_is_the_commits_code_and_is_gone_after():
    with exported("HEAD") as tree:
        assert (tree / "pyproject.toml").read_bytes() == shown("HEAD", "pyproject.toml")
        assert (tree / "electro_isla" / "__init__.py").is_file()
    assert not tree.exists()


def test_an_export_is_removed_when_the_work_on_it_fails():
    with pytest.raises(RuntimeError, match="bench failed"), exported("HEAD") as tree:
        raise RuntimeError("bench failed")
    assert not tree.exists()


def test_each_tree_database_is_migrated_and_seeded_by_that_trees_code(redis_url):
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", BEFORE_0008]).returncode:
        pytest.skip(f"{BEFORE_0008} is not in this clone's history")
    found = {}
    with PostgresServer() as pg, exported(BEFORE_0008) as base:
        for name, tree in {"base": base, "head": ROOT}.items():
            url = tree_database(pg, f"tree_{name}", tree, redis_url, cli=SEED, admin="bench-admin")
            with psycopg.connect(libpq_url(url)) as conn:
                found[name] = {
                    "version": conn.execute("SELECT version_num FROM alembic_version").fetchone(),
                    "pedidos": conn.execute(
                        "SELECT count(*), sum(total), sum(usuario_id) FROM pedidos"
                    ).fetchone(),
                    "admin": conn.execute(
                        "SELECT rol FROM usuarios WHERE username = 'bench-admin'"
                    ).fetchall(),
                }
    # Each schema is its own tree's: base stops at 0007, head has 0008.
    assert found["base"]["version"] == ("0007_rollups_sin_fila_caliente",)
    newest = max(p.stem for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    assert newest >= "0008" and found["head"]["version"] == (newest,)
    # Seeded alike: the same generator, the same arguments, the same rows.
    assert found["base"]["pedidos"][0] == 300
    assert found["base"]["pedidos"] == found["head"]["pedidos"]
    assert found["base"]["admin"] == found["head"]["admin"] == [("admin",)]
