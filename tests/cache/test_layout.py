"""The cache core's structure: one read path, one owner of the key layout, no borrowed privates.

These read the package as text (the same files a newcomer reads) and check the
promises the README's "The cache in one page" makes; the last one checks that
the in-process store clears by pattern without reaching into Flask-Caching.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from redis.commands.core import Script

import electro_isla.cache.scripts as scripts
from electro_isla.cache import cache_manager
from tests.cache.support import add_producto, manager_of

CACHE = Path(__file__).resolve().parents[2] / "electro_isla" / "cache"
OWN = {"self", "cls"}


def foreign_underscores(path: Path) -> list[str]:
    """`x._name` where x is not self/cls: a module reaching into another object's privates."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in OWN)
        ):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_no_cache_module_reaches_into_another_objects_private_members():
    found = [hit for path in sorted(CACHE.glob("*.py")) for hit in foreign_underscores(path)]
    assert found == []


def test_the_lua_scripts_spell_no_key_of_their_own():
    """Value keys come from keys.LUA_KEYS; generation and stats keys arrive as KEYS."""
    for text in (scripts.LOOKUP, scripts.PAGE_LOOKUP):
        body = text.split("local function row_gen_key", 1)[1]  # after keys.py's part
        assert not re.search(r"':(v|gen|stats|lock):|\{' \.\.|'\}'", body), body


def test_scripts_run_as_redis_py_script_objects(app):
    store = manager_of(app).store
    assert isinstance(store.lookup_script, Script)
    assert isinstance(store.page_script, Script)


def test_in_process_clear_by_pattern_deletes_through_the_store(sqlite_app):
    producto_id = add_producto(sqlite_app)
    client = sqlite_app.test_client()
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
    assert client.get("/api/productos/").headers["X-Cache"] == "MISS"
    with sqlite_app.app_context():
        assert cache_manager.invalidate_pattern("producto") == 1  # the rendered detail
        assert cache_manager.invalidate_pattern("*") >= 2  # the page's id list and fragment
        assert cache_manager.invalidate_pattern("*") == 0
    assert client.get(f"/api/productos/{producto_id}/").headers["X-Cache"] == "MISS"
