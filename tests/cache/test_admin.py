"""Admin endpoints and CLI of the cache: who may call them, and what `clear` never touches."""

from __future__ import annotations

import json

import pytest

from electro_isla.cache import cache_manager
from electro_isla.cache.commands import WARMERS, run_warmers, warmer
from electro_isla.cache.registry import REGISTRY
from tests.cache.support import add_producto, producto_fields, raw_redis
from tests.helpers import ADMIN_MATRIX, headers_for, user_with_role

STATS_KEYS = {
    "backend",
    "hits",
    "misses",
    "fetches",
    "invalidations",
    "errors",
    "hit_ratio",
    "last_updated",
    "families",
    "ttl",
}


@pytest.mark.parametrize("caller", ADMIN_MATRIX)
@pytest.mark.parametrize(
    "method, path",
    [("get", "/api/admin/cache/stats/"), ("post", "/api/admin/cache/clear/")],
)
def test_only_admins_reach_the_cache_endpoints(app, client, caller, method, path):
    kwargs = {"json": {}} if method == "post" else {}
    response = getattr(client, method)(path, headers=headers_for(app, caller), **kwargs)
    assert response.status_code == (ADMIN_MATRIX[caller] or 200)
    if response.status_code != 200:
        assert response.json["code"] == response.status_code  # the error envelope


def fill_cache(app, ids: list[int]) -> None:
    with app.app_context():
        for producto_id in ids:
            cache_manager.get("producto", lambda i=producto_id: producto_fields(i), row=producto_id)
        cache_manager.get("lista_productos", lambda: [1], params={"page": 1})
        cache_manager.get("lista_productos", lambda: [2], params={"page": 2})
        cache_manager.get("estadisticas_productos", lambda: {"x": 1})


def test_stats_endpoint_has_the_contract_shape(app, client):
    _, admin = user_with_role(app, "admin")  # its own perfil lookup counts too
    ids = [add_producto(app), add_producto(app, nombre="B")]
    fill_cache(app, ids)
    fill_cache(app, ids)
    body = client.get("/api/admin/cache/stats/", headers=admin).json
    assert set(body) >= STATS_KEYS
    assert body["backend"] == "redis"
    assert set(body["families"]) == set(REGISTRY) == set(body["ttl"])
    assert body["families"]["producto"]["hits"] == 2
    assert body["families"]["lista_productos"] == {
        "hits": 2,
        "misses": 2,
        "fetches": 2,
        "invalidations": 2,  # two productos inserted
    }
    assert body["ttl"]["perfil_usuario"] == 3600
    assert body["hits"] >= 5 and 0 < body["hit_ratio"] < 1
    assert body["last_updated"]


FOREIGN = {
    # (key suffix after the app prefix or absolute) -> what it stands for
    "{p}:stats": "statistics counters",
    "{p}:auth:revoked:jti-123": "a token revocation",
    "{p}:ratelimit:LIMITER/login/ip:1.2.3.4": "a rate-limit window",
    "{p}:gen:producto": "a generation counter",
    "{p}0:v:producto:1:1:-": "another app whose prefix extends ours",
    "other:{p}:v:producto:1:1:-": "another app",
    "v:producto:1:1:-": "no prefix at all",
}


def plant_foreign_keys(app) -> list[str]:
    prefix = app.config["CACHE_KEY_PREFIX"]
    client = raw_redis(app)
    keys = [k.format(p=prefix) for k in FOREIGN]
    for key in keys:
        if key.endswith(":stats"):
            client.hincrby(key, "hits", 0)
        elif not client.exists(key):
            client.set(key, "1")
    return keys


def value_keys(app) -> list[bytes]:
    return list(raw_redis(app).scan_iter(f"{app.config['CACHE_KEY_PREFIX']}:v:*"))


def admin_headers(app, client) -> dict[str, str]:
    """An admin whose perfil is already cached (its first request caches it)."""
    _, admin = user_with_role(app, "admin")
    assert client.get("/api/admin/cache/stats/", headers=admin).status_code == 200
    return admin


def test_clear_deletes_cached_entries_only(app, client):
    admin = admin_headers(app, client)
    fill_cache(app, [add_producto(app), add_producto(app, nombre="B")])
    foreign = plant_foreign_keys(app)
    cached = len(value_keys(app))
    assert cached == 6  # 2 productos, 2 pages, 1 statistic, the admin's access check
    response = client.post("/api/admin/cache/clear/", headers=admin, json={})
    assert response.status_code == 200
    assert response.json == {"deleted": cached}
    assert value_keys(app) == []
    for key in foreign:
        assert raw_redis(app).exists(key), key


def test_clear_with_a_pattern_deletes_the_matching_names(app, client):
    admin = admin_headers(app, client)
    ids = [add_producto(app), add_producto(app, nombre="B")]
    fill_cache(app, ids)
    plant_foreign_keys(app)
    response = client.post("/api/admin/cache/clear/", headers=admin, json={"pattern": "producto"})
    assert response.json == {"deleted": 2}  # not productos_vendidos, not lista_productos
    left = {k.decode().split(":")[2].strip("{}") for k in value_keys(app)}
    assert left == {"lista_productos", "estadisticas_productos", "acceso_usuario"}
    response = client.post(
        "/api/admin/cache/clear/", headers=admin, json={"pattern": "estadisticas_*"}
    )
    assert response.json == {"deleted": 1}


def test_clear_without_a_body_clears_everything(app, client):
    _, admin = user_with_role(app, "admin")
    fill_cache(app, [add_producto(app)])
    response = client.post("/api/admin/cache/clear/", headers=admin)
    assert response.status_code == 200
    assert response.json["deleted"] == 5  # 1 producto, 2 pages, 1 statistic, the perfil


@pytest.mark.parametrize("pattern", ["", "a b", "x" * 201, 12, None, "prefix/../x"])
def test_clear_refuses_bad_patterns_and_deletes_nothing(app, client, pattern):
    admin = admin_headers(app, client)
    fill_cache(app, [add_producto(app)])
    before = len(value_keys(app))
    response = client.post("/api/admin/cache/clear/", headers=admin, json={"pattern": pattern})
    assert response.status_code == 422
    assert len(value_keys(app)) == before


def test_cli_cache_stats_table_and_json(app, runner):
    fill_cache(app, [add_producto(app)])
    result = runner.invoke(args=["cache-stats"])
    assert result.exit_code == 0, result.output
    assert "hit ratio" in result.output
    assert all(name in result.output for name in REGISTRY)
    result = runner.invoke(args=["cache-stats", "--json"])
    body = json.loads(result.output)
    assert set(body) >= STATS_KEYS
    assert body["families"]["producto"]["misses"] == 1


def test_cli_cache_clear_with_and_without_pattern(app, runner):
    fill_cache(app, [add_producto(app)])
    foreign = plant_foreign_keys(app)
    result = runner.invoke(args=["cache-clear", "--pattern", "lista_productos"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 " in result.output
    result = runner.invoke(args=["cache-clear"])
    assert "deleted 2 " in result.output  # producto + estadisticas_productos
    assert value_keys(app) == []
    assert all(raw_redis(app).exists(k) for k in foreign)


@pytest.mark.parametrize("pattern", ["", "a b", "prefix/../x", "{producto}", "x" * 201])
def test_cli_cache_clear_refuses_what_the_api_refuses(app, runner, pattern):
    """An operator's probe: the CLI took '' and '[' ("deleted 0", exit 0) where the API
    answers 422 "Not a cache key glob."."""
    fill_cache(app, [add_producto(app)])
    before = len(value_keys(app))
    result = runner.invoke(args=["cache-clear", "--pattern", pattern])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --pattern" in result.output
    assert "Not a cache key glob" in result.output or "between 1 and 200" in result.output
    assert len(value_keys(app)) == before


def test_cli_cache_warm_computes_then_finds_cached(app, runner):
    add_producto(app)
    result = runner.invoke(args=["cache-warm"])
    assert result.exit_code == 0, result.output
    for name in WARMERS:
        assert f"{name}" in result.output
    first = {line.split()[0]: line.split()[1] for line in result.output.splitlines()}
    assert set(first.values()) == {"computed"}, result.output
    again = runner.invoke(args=["cache-warm"])
    second = {line.split()[0]: line.split()[1] for line in again.output.splitlines()}
    assert set(second.values()) == {"cached"}, again.output
    with app.app_context():
        families = cache_manager.get_stats()["families"]
    # A composed page computes twice when cold: its id list, then its rows' fragments.
    assert families["lista_productos"]["fetches"] == 2
    assert families["estadisticas_ventas"]["fetches"] == 1


def test_warmers_are_extensible_and_one_failure_does_not_stop_the_rest(app, monkeypatch):
    monkeypatch.setattr("electro_isla.cache.commands.WARMERS", {})

    @warmer("metodos_pago")
    def metodos():  # noqa: ANN202
        return cache_manager.get("metodos_pago", lambda: [{"metodo_pago": "efectivo"}])

    @warmer("roto")
    def roto():  # noqa: ANN202
        raise RuntimeError("boom")

    from electro_isla.cache import commands

    commands.WARMERS["falta"] = "electro_isla.no_such_module:f"
    with app.app_context():
        results = {r["name"]: r["status"] for r in run_warmers()}
    assert results == {"metodos_pago": "computed", "roto": "failed", "falta": "missing"}


IN_PROCESS_COMMANDS = (
    ["cache-clear"],
    ["cache-stats"],
    ["cache-warm"],
    ["estadisticas-check"],
    ["estadisticas-rebuild"],  # its invalidation reached only its own cache, silently
)


@pytest.mark.parametrize("args", IN_PROCESS_COMMANDS)
def test_cli_warns_that_the_in_process_cache_is_its_own(sqlite_app, args):
    """No REDIS_URL: the CLI's cache is not the server's; `cache-clear` said "deleted 0"."""
    result = sqlite_app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "in-process" in warnings[0] and "POST /api/admin/cache/clear/" in warnings[0]
    assert "warning" not in result.stdout


@pytest.mark.parametrize("args", IN_PROCESS_COMMANDS)
def test_cli_with_redis_shares_the_servers_cache_and_does_not_warn(app, runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    if args == ["estadisticas-rebuild"]:  # it logs what it wrote there
        assert "warning" not in result.stderr
    else:
        assert result.stderr == ""


def test_cli_cache_stats_json_stays_parseable_with_the_warning(sqlite_app):
    result = sqlite_app.test_cli_runner().invoke(args=["cache-stats", "--json"])
    assert json.loads(result.stdout)["backend"] == "simple"
    assert "POST /api/admin/cache/clear/" in result.stderr


@pytest.mark.parametrize("args", [["cache-stats"], ["cache-stats", "--json"]])
def test_cli_cache_stats_exits_1_while_redis_does_not_answer(make_app, own_redis, args):
    """It printed a table of zeros and exited 0, where cache-clear and cache-warm exit 1."""
    app = make_app(REDIS_URL=own_redis.url, REDIS_SOCKET_TIMEOUT=0.2)
    own_redis.kill()
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1, result.output
    assert "the cache server is not answering" in result.stderr
    if "--json" in args:
        assert json.loads(result.stdout)["circuit_open"] is True
