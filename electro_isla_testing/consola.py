"""Headless Chromium for the console tests, and a console served by gunicorn on private servers.

The browser is Debian's `chromium` driven through Debian's `chromium-driver`
(no driver or browser is downloaded at run time: SE_OFFLINE, explicit paths).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import make_url

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
STATS = ("ventas", "usuarios", "productos", "reporte")
ADMIN = ("admin", "admin12345")
TRABAJADOR = ("trabajador", "trabajador12345")
CLIENTE = ("cliente", "cliente12345")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (its own profile directory), quit and removed afterwards."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager: never download
    profile = tempfile.mkdtemp(prefix="ei-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        import shutil

        shutil.rmtree(profile, ignore_errors=True)


def create_database(pg_url: str, name: str) -> str:
    """A fresh database beside the suite's (same private server); returns its URL."""
    base = make_url(pg_url)
    admin = base.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def drop_database(pg_url: str, name: str) -> None:
    admin = make_url(pg_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(database_url: str, log_dir: Path, pedidos: int = 240) -> None:
    """Migrations, a demo store, and the three usuarios the tests log in as."""
    import flask_migrate

    from electro_isla import create_app
    from electro_isla.config import TestConfig
    from electro_isla.extensions import db

    app = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None, "LOG_DIR": str(log_dir)},
    )
    with app.app_context():
        flask_migrate.upgrade(directory=app.config["MIGRATIONS_DIR"])
        runner = app.test_cli_runner()
        args = ["--usuarios", "30", "--productos", "40", "--pedidos", str(pedidos), "--seed", "19"]
        result = runner.invoke(args=["seed-demo", *args])
        assert result.exit_code == 0, result.output
        for (username, password), rol in zip(
            (ADMIN, TRABAJADOR, CLIENTE), ("admin", "trabajador", "cliente"), strict=True
        ):
            result = runner.invoke(
                args=[
                    "create-user",
                    username,
                    "--email",
                    f"{username}@consola.test",
                    "--password",
                    password,
                    "--rol",
                    rol,
                ]
            )
            assert result.exit_code == 0, result.output
        db.engine.dispose()


class Api:
    """The API as a script sees it: a logged-in requests session."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        resp = self.session.post(
            f"{base_url}/api/auth/login/",
            json={"username": username, "password": password},
            timeout=10,
        )
        resp.raise_for_status()
        self.headers = {"Authorization": f"Bearer {resp.json()['accessToken']}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(
            f"{self.base_url}{path}", headers=self.headers, timeout=10, **kwargs
        )

    def stat(self, name: str) -> dict[str, Any]:
        resp = self.get(f"/api/admin/estadisticas/{name}/")
        resp.raise_for_status()
        return resp.json(parse_float=Decimal)

    def has_stream(self) -> bool:
        """Whether this build serves the event stream (issue 18), from its OpenAPI document.

        Not by opening one: a closed stream keeps its per-usuario slot until its lease ends.
        """
        paths = self.session.get(f"{self.base_url}/api/openapi.json", timeout=10).json()["paths"]
        return "/api/admin/estadisticas/stream/" in paths

    def place_order(self) -> dict[str, Any]:
        productos = self.session.get(
            f"{self.base_url}/api/productos/?page_size=100", timeout=10
        ).json()["results"]
        producto = next(p for p in productos if p["stock"] >= 1)
        resp = self.session.post(
            f"{self.base_url}/api/pedidos/",
            headers=self.headers,
            json={
                "items": [{"producto_id": producto["id"], "cantidad": 1}],
                "metodo_pago": "tarjeta",
                "direccion_entrega": "Calle Consola 19",
                "telefono": "555-0119",
            },
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return resp.json()


# The cached names behind the four statistics (their fetches count the work a change costs).
STAT_NAMES = (
    "estadisticas_ventas",
    "estadisticas_usuarios",
    "estadisticas_productos",
    "reporte_general",
)


def statistics_fetches(api: Api) -> dict[str, int]:
    """Fetches so far of each statistic's cached name, from the cache stats endpoint."""
    families = api.get("/api/admin/cache/stats/").json()["families"]
    return {name: families[name]["fetches"] for name in STAT_NAMES}


def log_in(driver: webdriver.Chrome, base_url: str, username: str, password: str) -> None:
    """Through the form, with the keyboard: type, Tab, type, Enter."""
    driver.get(f"{base_url}/admin/")
    # Chromium keeps 250 resource timings by default; the tests count requests
    # over a page's whole life, so a busy page must not drop the late ones.
    driver.execute_script("performance.setResourceTimingBufferSize(100000);")
    field = driver.find_element(By.ID, "login-usuario")
    field.send_keys(username, Keys.TAB)
    driver.switch_to.active_element.send_keys(password, Keys.ENTER)


def figures(driver: webdriver.Chrome) -> dict[str, str]:
    """Every data-field on the page and its data-value."""
    return driver.execute_script(
        "const out = {};"
        "for (const el of document.querySelectorAll('[data-field]'))"
        "  out[el.dataset.field] = el.dataset.value;"
        "return out;"
    )


def mode(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "estado").get_attribute("data-mode")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll `predicate` until it is truthy; return it, or its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def leaves(document: Any, prefix: str) -> dict[str, Any]:
    """{dotted path: value} of every leaf of a JSON document."""
    if isinstance(document, dict):
        items = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return {prefix: document}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(leaves(value, f"{prefix}.{key}"))
    return out


def same(shown: str, value: Any) -> bool:
    """A data-value equals the API's figure (numbers compared as numbers)."""
    if value is None:
        return shown == ""
    if isinstance(value, bool):
        return shown == str(value).lower()
    if isinstance(value, int | Decimal):
        try:
            return Decimal(shown) == Decimal(value)
        except ArithmeticError:
            return False
    return shown == str(value)


@contextlib.contextmanager
def demo_console(pedidos: int = 3000, workers: int = 2) -> Iterator[Any]:
    """A seeded demo store behind gunicorn on private PostgreSQL and Redis servers
    (for `make screenshot` and bench/consola.py); everything is removed afterwards."""
    from electro_isla_testing.gunicorn import GunicornServer
    from electro_isla_testing.servers import PostgresServer, RedisServer

    postgres = PostgresServer()
    redis = None
    server = None
    try:
        url = create_database(postgres.start(), "consola_demo")
        seed(url, Path(postgres.root) / "seed-logs", pedidos=pedidos)
        redis = RedisServer().start()
        server = GunicornServer(url, redis.url, workers=workers, threads=8).start()
        yield server
    finally:
        if server is not None:
            server.stop()
        if redis is not None:
            redis.stop()
        postgres.cleanup()
