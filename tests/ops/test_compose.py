"""docker-compose.yml, Dockerfile and .env.example checked against the app.

Docker cannot run here, so every command, module path, file and environment
variable the containers use is checked against the code instead: a renamed
variable, a missing CLI command or a wrong module path fails here, not at the
first deploy. Commands are run for real with the compose configuration
(`gunicorn ... --check-config` imports the app, `flask ... --help` resolves
the command), so the app is also proven to boot with `.env.example`.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gunicorn
import pytest
import redis as redis_lib
import yaml
from sqlalchemy import make_url

from electro_isla.cache.registry import REGISTRY
from electro_isla.config import CONFIGS, Config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
BIN = Path(sys.executable).parent

# `from wsgi import app` builds the development app here, without a SECRET_KEY.
pytestmark = pytest.mark.filterwarnings("ignore:SECRET_KEY is not set")


# -- what the code reads -----------------------------------------------------------


def env_reads(path: Path) -> set[str]:
    """Environment variable names a Python file reads with a literal (or constant) name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }

    def literal(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    def is_environ(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr in {"environ", "env_orig"}) or (
            isinstance(node, ast.Name) and node.id in {"environ", "env"}
        )

    names: set[str] = set()
    for node in ast.walk(tree):
        arg = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in {"get", "pop", "setdefault"}:
                if is_environ(func.value):
                    arg = node.args[0]
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id in {"getenv", "_int_env"}
            ):
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            arg = node.slice
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            arg = node.left
        name = literal(arg) if arg is not None else None
        if name and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            names.add(name)
    return names


def known_env_vars() -> set[str]:
    known = set(Config.ENV_VARS)
    known |= {f"CACHE_TTL_{name.upper()}" for name in REGISTRY}
    for path in [*(ROOT / "electro_isla").rglob("*.py"), ROOT / "gunicorn.conf.py"]:
        known |= env_reads(path)
    gunicorn_dir = Path(gunicorn.__file__).parent
    known |= env_reads(gunicorn_dir / "config.py") | env_reads(gunicorn_dir / "app" / "base.py")
    return known


# -- what the deployment files say ---------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run this repository's image."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in service.get("env_file", []):
        entry = {"path": entry} if isinstance(entry, str) else entry
        path = ROOT / entry["path"]
        if path.exists():
            env.update(read_env_file(path))
        else:
            assert entry.get("required") is False, f"env_file {entry['path']} missing"
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({k: str(v) for k, v in environment.items()})
    return env


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


# Policies that evict only keys with a TTL: the statistics counters (no TTL) stay, and
# every key with a TTL is one the app can lose safely (README, "What Redis may evict").
SAFE_EVICTION = ("volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random")


def redis_memory_problems(name: str, service: dict[str, Any]) -> list[str]:
    """A Redis without maxmemory grows until the host kills it; allkeys-* evicts counters."""
    args = argv(service.get("command") or [])
    problems = []
    if "--maxmemory" not in args or args.index("--maxmemory") + 1 >= len(args):
        problems.append(f"{name} has no --maxmemory")
    policy = args[args.index("--maxmemory-policy") + 1] if "--maxmemory-policy" in args else None
    if policy not in SAFE_EVICTION:
        problems.append(f"{name} --maxmemory-policy must be one of {SAFE_EVICTION}, not {policy}")
    return problems


def compose_problems(compose: dict[str, Any]) -> list[str]:
    """Structural checks: the dependency graph, health checks, env names."""
    problems: list[str] = []
    services = compose.get("services", {})
    for required in ("postgres", "redis", "migrate", "api"):
        if required not in services:
            problems.append(f"service {required} missing")
    if problems:
        return problems
    postgres, redis_svc = services["postgres"], services["redis"]
    if not postgres.get("healthcheck"):
        problems.append("postgres has no healthcheck")
    if not redis_svc.get("healthcheck"):
        problems.append("redis has no healthcheck")
    problems.extend(redis_memory_problems("redis", redis_svc))
    volumes = compose.get("volumes") or {}
    pg_volumes = [v.split(":")[0] for v in postgres.get("volumes", [])]
    if not any(v in volumes for v in pg_volumes):
        problems.append("postgres data is not on a named volume")
    expected = {
        "api": {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        },
        "migrate": {"postgres": "service_healthy"},
    }
    for name, deps in expected.items():
        got = {
            dep: (cond or {}).get("condition")
            for dep, cond in services[name].get("depends_on", {}).items()
        }
        for dep, condition in deps.items():
            if got.get(dep) != condition:
                problems.append(f"{name} must wait for {dep}: {condition} (has {got.get(dep)})")
    if services["migrate"].get("restart", "no") != "no":
        problems.append("migrate is one-shot: restart must be 'no'")
    known = known_env_vars()
    for name, svc in app_services(compose).items():
        for var in service_env(svc):
            if var not in known:
                problems.append(f"{name}: {var} is not read by the app or gunicorn")
    return problems


# -- tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_structure_and_env_names_match_the_app(compose):
    assert compose_problems(compose) == []


def test_the_checker_catches_drift(compose):
    import copy

    broken = copy.deepcopy(compose)
    broken["services"]["api"]["environment"] = {"DATBASE_URL": "postgresql://x"}
    broken["services"]["api"]["depends_on"].pop("migrate")
    broken["services"]["redis"].pop("healthcheck")
    broken["services"]["redis"]["command"] = ["redis-server", "--maxmemory-policy", "allkeys-lru"]
    problems = compose_problems(broken)
    assert any("no --maxmemory" in p for p in problems)
    assert any("allkeys-lru" in p for p in problems)
    assert any("DATBASE_URL" in p for p in problems)
    assert any("migrate" in p for p in problems)
    assert any("redis has no healthcheck" in p for p in problems)


def test_env_reads_finds_what_config_and_gunicorn_read():
    known = known_env_vars()
    # From config.py's table, config_class_from_env, gunicorn.conf.py and gunicorn itself.
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "APP_ENV", "METRICS_ALLOW"} <= known
    assert {"WEB_CONCURRENCY", "GUNICORN_THREADS", "PORT", "PROMETHEUS_MULTIPROC_DIR"} <= known
    assert {"GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS"} <= known
    assert "DATBASE_URL" not in known


def test_env_example_points_at_the_compose_services(compose):
    env = read_env_file(ENV_EXAMPLE)
    config = CONFIGS[env["APP_ENV"]]
    assert config.ENV_NAME == "production"
    for required in ("DATABASE_URL", "REDIS_URL"):
        assert env.get(required), f".env.example must set {required}"
    # A published key would sign forged tokens: the example carries none, and
    # production refuses to start until the operator's .env supplies one.
    assert "SECRET_KEY" in env and env["SECRET_KEY"] == ""
    from electro_isla.config import secret_key_problem

    assert secret_key_problem(env["SECRET_KEY"])

    pg_env = compose["services"]["postgres"]["environment"]
    url = make_url(env["DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"  # the driver pyproject installs
    assert (url.host, url.port or 5432) == ("postgres", 5432)
    assert (url.username, url.password, url.database) == (
        pg_env["POSTGRES_USER"],
        pg_env["POSTGRES_PASSWORD"],
        pg_env["POSTGRES_DB"],
    )
    healthcheck = " ".join(argv(compose["services"]["postgres"]["healthcheck"]["test"]))
    assert f"-U {pg_env['POSTGRES_USER']}" in healthcheck
    assert f"-d {pg_env['POSTGRES_DB']}" in healthcheck

    redis_url = urlsplit(env["REDIS_URL"])
    assert (redis_url.scheme, redis_url.hostname) == ("redis", "redis")


def test_api_port_healthcheck_and_image_command_agree(compose):
    api = compose["services"]["api"]
    env = service_env(api)
    port = env.get("PORT", "8000")
    assert any(str(p).split(":")[-1] == port for p in api["ports"])
    check = " ".join(argv(api["healthcheck"]["test"]))
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\"]", check)
    assert found, check
    assert found.group(1) == port

    from wsgi import app

    paths = {rule.rule for rule in app.url_map.iter_rules()}
    assert found.group(2) in paths

    dockerfile = DOCKERFILE.read_text()
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.M)
    assert cmd and yaml.safe_load(cmd.group(1)) == argv(api["command"])
    assert re.search(rf"^EXPOSE\s+{port}\s*$", dockerfile, re.M)
    assert compose["services"]["api"].get("stop_grace_period")


def test_dockerfile_is_slim_non_root_and_caches_dependencies():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    base = next(line for line in lines if line.startswith("FROM "))
    version = re.fullmatch(r"FROM python:(\d+)\.(\d+)-slim(?:\S*)?(?: AS \w+)?", base)
    assert version, base
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = re.search(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert (int(version[1]), int(version[2])) >= (int(minimum[1]), int(minimum[2]))

    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}

    copy_deps = next(i for i, line in enumerate(lines) if line.startswith("COPY pyproject.toml"))
    copy_all = next(i for i, line in enumerate(lines) if re.match(r"COPY (--\S+ )*\. \.", line))
    installs = [i for i, line in enumerate(lines) if "pip install" in line]
    assert copy_deps < installs[0] < copy_all, "dependencies must be installed before the code"

    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git"} <= set(ignored)


def operator_secret_key() -> str:
    """What an operator's `.env` adds: a key generated as `.env.example` says."""
    import secrets

    return secrets.token_urlsafe(48)


def _command_env(
    service: dict[str, Any], tmp_path: Path, secret_key: str | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    env.update(service_env(service))
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["LOG_DIR"] = str(tmp_path / "logs")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    return env


def run_service_command(
    command: list[str],
    service: dict[str, Any],
    tmp_path: Path,
    secret_key: str | None = None,
):
    """Run a container command here, in a way that resolves it without serving.

    `secret_key` stands for the operator's `.env` (None: `.env.example` alone).
    """
    program, *args = command
    if program == "gunicorn":
        args = [*args, "--check-config"]
    elif program == "flask":
        args = [*args, "--help"]
    else:
        pytest.fail(f"unexpected program in compose: {program}")
    return subprocess.run(
        [str(BIN / program), *args],
        cwd=ROOT,
        env=_command_env(service, tmp_path, secret_key),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("service_name", ["migrate", "api"])
def test_every_compose_command_resolves_in_the_app(compose, service_name, tmp_path):
    service = compose["services"][service_name]
    command = argv(service["command"])
    for part in command:
        if part.endswith(".py"):
            assert (ROOT / part).is_file(), part
    result = run_service_command(command, service, tmp_path, operator_secret_key())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_refuses_to_start_with_env_example_alone(compose, tmp_path):
    """No .env, no key: gunicorn cannot load the app, instead of signing with a public key."""
    api = compose["services"]["api"]
    result = run_service_command(argv(api["command"]), api, tmp_path)
    assert result.returncode != 0
    assert "refuses to start without SECRET_KEY" in result.stdout + result.stderr

    placeholder = "change-me-to-a-long-random-string-before-any-real-deployment"
    result = run_service_command(argv(api["command"]), api, tmp_path, placeholder)
    assert result.returncode != 0
    assert "placeholder" in result.stdout + result.stderr


def test_migrations_directory_the_migrate_service_needs_exists():
    from wsgi import app

    migrations = Path(app.config.get("MIGRATIONS_DIR", ROOT / "migrations"))
    assert (migrations / "env.py").is_file()
    assert any((migrations / "versions").glob("*.py"))


def flask_command_exists(command: list[str]) -> bool:
    """Resolve `flask --app wsgi <group> <command>` in the app's CLI, in-process."""
    import click

    from wsgi import app

    assert command[:3] == ["flask", "--app", "wsgi"], command
    group: click.Command | None = app.cli
    ctx = click.Context(app.cli)
    for name in [part for part in command[3:] if not part.startswith("-")]:
        if not isinstance(group, click.Group):
            return False
        group = group.get_command(ctx, name)
        if group is None:
            return False
    return True


def test_flask_commands_of_compose_and_the_contract_exist(compose):
    assert flask_command_exists(argv(compose["services"]["migrate"]["command"]))
    for name in ("create-user", "seed-demo", "cache-stats", "cache-clear", "cache-warm"):
        assert flask_command_exists(["flask", "--app", "wsgi", name])
    assert not flask_command_exists(["flask", "--app", "wsgi", "db", "upgrad"])
    assert not flask_command_exists(["flask", "--app", "wsgi", "seed-everything"])


def test_a_wrong_module_path_fails_the_check(compose, tmp_path):
    command = ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:application"]
    result = run_service_command(
        command, compose["services"]["api"], tmp_path, operator_secret_key()
    )
    assert result.returncode != 0
    assert "application" in result.stderr


# -- the Sentinel overlay ------------------------------------------------------------------

SENTINEL_OVERLAY = ROOT / "docker-compose.sentinel.yml"


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`docker compose -f base -f overlay`: mappings merge, everything else is replaced."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def test_the_sentinel_overlay_has_a_replica_three_sentinels_and_matches_the_app(compose):
    full = merged(compose, load_compose(SENTINEL_OVERLAY))
    assert compose_problems(full) == []
    services = full["services"]
    sentinels = sorted(n for n in services if n.startswith("sentinel"))
    assert len(sentinels) == 3
    for name in sentinels:
        script = " ".join(argv(services[name]["command"]))
        assert "sentinel monitor mymaster redis 6379 2" in script  # quorum 2 of 3
        assert "--sentinel" in script and "port 26379" in script
        assert services[name].get("healthcheck")
    replica = " ".join(argv(services["redis-replica"]["command"]))
    assert "--replicaof redis 6379" in replica
    assert "--min-replicas-to-write 1" in " ".join(argv(services["redis"]["command"]))
    # A promoted replica is bounded the same way.
    assert redis_memory_problems("redis-replica", services["redis-replica"]) == []

    env = service_env(services["api"])
    assert env["REDIS_MODE"] == "sentinel"
    assert env["REDIS_SENTINEL_MASTER"] == "mymaster"
    hosts = [h.split(":") for h in env["REDIS_SENTINELS"].split(",")]
    assert sorted(h for h, _ in hosts) == sentinels and {p for _, p in hosts} == {"26379"}
    waits = services["api"]["depends_on"]
    assert all(waits[n]["condition"] == "service_healthy" for n in [*sentinels, "redis-replica"])

    from electro_isla.shared_store.clients import build_client, configured

    config = {**Config.__dict__, "REDIS_URL": None}
    config.update({k: env[k] for k in ("REDIS_MODE", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")})
    assert configured(config)
    client = build_client(config)  # lazy: nothing connects until first use
    assert client.connection_pool.service_name == "mymaster"


def test_a_real_redis_takes_the_compose_memory_settings(compose):
    from electro_isla_testing.servers import RedisServer

    args = argv(compose["services"]["redis"]["command"])
    memory = args[args.index("--maxmemory") : args.index("--maxmemory-policy") + 2]
    server = RedisServer(args=tuple(memory)).start()
    try:
        client = redis_lib.Redis(port=server.port)
        assert client.config_get("maxmemory")["maxmemory"] == str(256 * 1024 * 1024)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
    finally:
        server.stop()
