"""The operator console in a real headless Chromium against gunicorn, PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from electro_isla_testing.consola import (
    ADMIN,
    CLIENTE,
    STAT_NAMES,
    STATS,
    TRABAJADOR,
    Api,
    chromium,
    figures,
    leaves,
    log_in,
    mode,
    same,
    statistics_fetches,
    wait_until,
)

NO_STREAM = "GET /api/admin/estadisticas/stream/ (issue 18, the event stream) is not in this build"
CHARTS = (
    "ventas_por_mes",
    "metodos_pago",
    "usuarios_por_mes",
    "usuarios_por_rol",
    "stock_por_categoria",
)


def loaded(driver) -> bool:
    """All four statistics shown and every chart drawn."""
    shown = figures(driver)
    if not all(
        f in shown
        for f in (
            "ventas.generado_en",
            "usuarios.generado_en",
            "productos.generado_en",
            "reporte.fecha_generacion",
        )
    ):
        return False
    return driver.execute_script(
        "return arguments[0].every(n => {"
        "  const img = document.getElementById('grafico-' + n);"
        "  return img.complete && img.naturalWidth > 0; });",
        list(CHARTS),
    )


def refreshes(driver) -> int:
    """How many token refreshes the page has requested so far."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.endsWith('/api/auth/refresh/')).length;"
    )


def auth_requests(driver) -> list[tuple]:
    """This tab's requests to /api/auth/: (path, start and end in epoch ms, status)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/auth/'))"
        ".map(e => [new URL(e.name).pathname, Math.round(performance.timeOrigin + e.startTime),"
        " Math.round(performance.timeOrigin + e.responseEnd), e.responseStatus]);"
    )


def total_pedidos(driver) -> str | None:
    return figures(driver).get("reporte.resumen.total_pedidos")


def test_admin_sees_every_statistics_figure_as_the_api_answers_it(console) -> None:
    api = Api(console.url, *ADMIN)
    with chromium() as driver:
        log_in(driver, console.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15), driver.page_source[:2000]
        shown = figures(driver)
        for stat in STATS:
            expected = leaves(api.stat(stat), stat)
            assert expected
            missing = sorted(set(expected) - set(shown))
            assert not missing, f"figures of {stat} not on the page: {missing}"
            wrong = {p: (shown[p], v) for p, v in expected.items() if not same(shown[p], v)}
            assert not wrong, f"{stat}: page vs API {wrong}"
            stray = sorted(f for f in shown if f.startswith(f"{stat}.") and f not in expected)
            assert not stray, f"data-field naming nothing in the API's {stat}: {stray}"
        # The admin also sees the cache panel, figures from /api/admin/cache/stats/ and /readyz.
        assert wait_until(lambda: "cache.hit_ratio" in figures(driver), 10)
        shown = figures(driver)
        assert shown["cache.readyz.cache"] == "ok"
        assert shown["cache.readyz.database"] == "ok"
        assert shown["cache.backend"] == api.get("/api/admin/cache/stats/").json()["backend"]
        assert "cache.families.reporte_general.fetches" in shown


def test_an_order_reaches_the_page_within_2_s_without_a_reload(console) -> None:
    api = Api(console.url, *ADMIN)
    if not api.has_stream():
        pytest.skip(NO_STREAM)
    with chromium() as driver:
        log_in(driver, console.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "live", 5), mode(driver)
        driver.execute_script("window.__sinRecargar = true;")
        before = int(total_pedidos(driver))
        api.place_order()
        changed = wait_until(lambda: total_pedidos(driver) == str(before + 1), 2.0, 0.02)
        assert changed, f"total_pedidos still {total_pedidos(driver)} 2 s after the order"
        assert driver.execute_script("return window.__sinRecargar === true;"), "the page reloaded"
        assert mode(driver) == "live"


@contextlib.contextmanager
def streams_exhausted(api: Api) -> Iterator[None]:
    """The usuario's event streams all taken: open them until the API answers 429.

    The contract allows 4 per usuario; a stream closed moments ago may still hold
    its lease, so the count is whatever it takes to see the 429.
    """
    held: list[requests.Response] = []
    try:
        for _ in range(6):
            resp = requests.get(
                f"{api.base_url}/api/admin/estadisticas/stream/",
                headers={**api.headers, "Accept": "text/event-stream"},
                stream=True,
                timeout=(5, 60),
            )
            if resp.status_code == 429:
                resp.close()
                break
            assert resp.status_code == 200, resp.status_code
            held.append(resp)
        else:
            raise AssertionError("six streams for one usuario and no 429")
        yield
    finally:
        for resp in held:
            resp.close()


def test_stream_unavailable_and_redis_stopped_the_page_polls_and_still_updates(serve) -> None:
    """The stream refused (the usuario's 4 streams are taken), then Redis stopped."""
    server, redis = serve()
    api = Api(server.url, *ADMIN)
    streams = streams_exhausted(api) if api.has_stream() else contextlib.nullcontext()
    with streams, chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "polling", 5), mode(driver)
        assert "polling" in driver.find_element(By.ID, "estado").text.lower()
        redis.kill()
        before = int(total_pedidos(driver))
        api.place_order()
        changed = wait_until(lambda: total_pedidos(driver) == str(before + 1), 5.0, 0.05)
        assert changed, f"total_pedidos still {total_pedidos(driver)} 5 s after the order"
        assert mode(driver) == "polling"


def test_a_stream_resumed_with_nothing_new_keeps_the_page_live(serve) -> None:
    """A reload of gunicorn ends every stream; the page resumes with Last-Event-ID and,
    nothing having changed, the server used to send no event for a heartbeat: the page
    took that for a buffering proxy and polled until a figure moved (a helper's probe:
    still polling 75 s later)."""
    server, _ = serve(project_config=True)
    api = Api(server.url, *ADMIN)
    with chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "live", 5), mode(driver)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)  # new workers; the old ones end their streams
        seen = set()
        # Beyond the worst case before polling: 3 reconnections of up to 4 s each + 2 s.
        deadline = time.monotonic() + 16
        while time.monotonic() < deadline:
            seen.add(mode(driver))
            time.sleep(0.05)
        assert seen == {"live"}, seen
        before = int(total_pedidos(driver))
        api.place_order()
        changed = wait_until(lambda: total_pedidos(driver) == str(before + 1), 3.0, 0.05)
        assert changed, f"total_pedidos still {total_pedidos(driver)} 3 s after the order"


def test_redis_stopped_under_a_live_page_it_keeps_updating(serve) -> None:
    server, redis = serve()
    api = Api(server.url, *ADMIN)
    if not api.has_stream():
        pytest.skip(NO_STREAM)
    with chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "live", 5)
        redis.kill()
        before = int(total_pedidos(driver))
        api.place_order()
        changed = wait_until(lambda: total_pedidos(driver) == str(before + 1), 5.0, 0.05)
        assert changed, f"total_pedidos still {total_pedidos(driver)} 5 s after the order"
        assert mode(driver) in ("live", "polling")


def test_a_cliente_is_told_the_console_is_for_staff_and_sees_no_figure(console) -> None:
    with chromium() as driver:
        log_in(driver, console.url, *CLIENTE)
        message = wait_until(
            lambda: (
                driver.find_element(By.ID, "sin-permiso").is_displayed()
                and driver.find_element(By.ID, "sin-permiso-texto").text
            ),
            10,
        )
        assert message and "solo para el personal" in message and "cliente" in message
        assert not driver.find_element(By.ID, "tablero").is_displayed()
        # Give any stray request time to land: still nothing.
        wait_until(lambda: False, 1.0)
        assert figures(driver) == {}
        requested = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert not [u for u in requested if "/estadisticas/" in u or "/graficos/" in u]


def test_a_trabajador_sees_the_statistics_but_not_the_cache_panel(console) -> None:
    with chromium() as driver:
        log_in(driver, console.url, *TRABAJADOR)
        assert wait_until(lambda: loaded(driver), 15)
        assert not driver.find_element(By.ID, "panel-cache").is_displayed()
        assert not [f for f in figures(driver) if f.startswith("cache.")]


def admin_page_settled(driver, url: str) -> None:
    log_in(driver, url, *ADMIN)
    assert wait_until(lambda: loaded(driver), 15)
    assert wait_until(lambda: "cache.hit_ratio" in figures(driver), 10)
    wait_until(lambda: False, 3.5)  # a polling round or a stream event or two


def test_every_resource_the_page_loads_is_its_own_origin(console) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(console.url))
    with chromium() as driver:
        admin_page_settled(driver, console.url)
        urls = driver.execute_script(
            "return [location.href,"
            " ...performance.getEntriesByType('resource').map(e => e.name),"
            " ...[...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href)];"
        )
        foreign = [
            u for u in urls if not (u.startswith(f"{origin}/") or u.startswith(f"blob:{origin}/"))
        ]
        assert not foreign, foreign
        for asset in ("consola.js", "consola.css", "icono.svg"):
            assert any(f"/admin/static/{asset}" in u for u in urls), asset
        assert any("/admin/graficos/" in u for u in urls)


def test_the_browser_console_shows_no_error(console) -> None:
    if not Api(console.url, *ADMIN).has_stream():
        # Without the stream the page's first request to it is a 404, which Chromium logs.
        pytest.skip(NO_STREAM)
    with chromium() as driver:
        admin_page_settled(driver, console.url)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors


def test_at_390_px_wide_nothing_scrolls_sideways(console) -> None:
    with chromium(390, 844) as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        driver.get(f"{console.url}/admin/")
        login_width = driver.execute_script("return document.documentElement.scrollWidth;")
        assert login_width <= 390
        log_in(driver, console.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: "cache.hit_ratio" in figures(driver), 10)
        # The header (mode, logout) stays in view after the login (a probe: scrolled 158 px).
        assert driver.execute_script("return window.scrollY;") == 0
        # Open every <details> table too: the widest content the page can show.
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
        inner, width = driver.execute_script(
            "return [window.innerWidth,"
            " Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)];"
        )
        assert inner == 390
        assert width <= inner, f"the page is {width} px wide in a {inner} px viewport"
        # A one-word column header is not broken mid-word ("Categor/ía", a probe).
        broken = driver.execute_script(
            "return [...document.querySelectorAll('th')]"
            ".filter(th => th.offsetParent && !/[\\s\\u00ad]/.test(th.textContent.trim()))"
            ".filter(th => { const r = document.createRange(); r.selectNodeContents(th);"
            "  return r.getClientRects().length > 1; }).map(th => th.textContent);"
        )
        assert broken == [], broken
        # Nor does a table scroll inside its box ("Ingresos" cut off, a re-probe).
        wide = driver.execute_script(
            "return [...document.querySelectorAll('.tabla')]"
            ".filter(b => b.offsetParent && b.scrollWidth > b.clientWidth)"
            ".map(b => [b.id || b.parentElement.id, b.scrollWidth, b.clientWidth]);"
        )
        assert wide == [], wide


def test_an_expired_session_refreshes_once_then_shows_the_login_form(console) -> None:
    admin = Api(console.url, *ADMIN)
    usuario = admin.get("/api/admin/users/?q=trabajador").json()["results"][0]
    with chromium() as driver:
        log_in(driver, console.url, *TRABAJADOR)
        assert wait_until(lambda: loaded(driver), 15)
        # The usuario deactivated: its access token and its refresh cookie stop working.
        resp = admin.session.patch(
            f"{console.url}/api/admin/users/{usuario['id']}/",
            headers=admin.headers,
            json={"is_active": False},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        try:
            shown = wait_until(lambda: driver.find_element(By.ID, "acceso").is_displayed(), 40)
            assert shown, "still on the dashboard after the session ended"
            assert "sesión expiró" in driver.find_element(By.ID, "aviso").text
            assert figures(driver) == {}
            assert refreshes(driver) == 1
        finally:
            admin.session.patch(
                f"{console.url}/api/admin/users/{usuario['id']}/",
                headers=admin.headers,
                json={"is_active": True},
                timeout=10,
            )


def test_a_usuario_demoted_while_watching_is_told_so_and_sees_no_figure(console) -> None:
    """The stream ends on the demotion; every request after is a 403. The page kept the
    last figures on screen, polling, its "last update" moving on each 403 (a helper's
    probe), where a non-staff login is shown no figure."""
    admin = Api(console.url, *ADMIN)
    usuario = admin.get("/api/admin/users/?q=trabajador").json()["results"][0]
    with chromium() as driver:
        log_in(driver, console.url, *TRABAJADOR)
        assert wait_until(lambda: loaded(driver), 15)
        try:
            resp = admin.session.patch(
                f"{console.url}/api/admin/users/{usuario['id']}/",
                headers=admin.headers,
                json={"rol": "cliente"},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            told = wait_until(lambda: driver.find_element(By.ID, "sin-permiso").is_displayed(), 15)
            assert told, "still on the dashboard after the demotion"
            assert "ya no es del personal" in driver.find_element(By.ID, "sin-permiso-texto").text
            assert not driver.find_element(By.ID, "tablero").is_displayed()
            assert figures(driver) == {}
            # Requests in flight meet the revoked token: none may trade the reason for
            # "session expired", nor bring a token back with a refresh.
            time.sleep(3)
            assert driver.find_element(By.ID, "sin-permiso").is_displayed()
            assert not driver.find_element(By.ID, "acceso").is_displayed()
        finally:
            admin.session.patch(
                f"{console.url}/api/admin/users/{usuario['id']}/",
                headers=admin.headers,
                json={"rol": "trabajador"},
                timeout=10,
            )


def trabajador_rol(base_url: str) -> Callable[[str], None]:
    """Sets the demo trabajador's rol through the API, as the admin."""
    admin = Api(base_url, *ADMIN)
    usuario = admin.get("/api/admin/users/?q=trabajador").json()["results"][0]
    url = f"{base_url}/api/admin/users/{usuario['id']}/"

    def set_rol(rol: str) -> None:
        resp = admin.session.patch(url, headers=admin.headers, json={"rol": rol}, timeout=10)
        assert resp.status_code == 200, resp.text

    return set_rol


def test_an_admin_demoted_to_trabajador_loses_the_cache_panel_and_keeps_the_figures(
    console,
) -> None:
    set_rol = trabajador_rol(console.url)
    set_rol("admin")
    try:
        with chromium() as driver:
            log_in(driver, console.url, *TRABAJADOR)
            assert wait_until(lambda: loaded(driver), 15)
            panel = driver.find_element(By.ID, "panel-cache")
            assert wait_until(panel.is_displayed, 5)
            set_rol("trabajador")
            assert wait_until(lambda: not panel.is_displayed(), 15), "cache panel still shown"
            assert driver.find_element(By.ID, "usuario-nombre").text.endswith("(trabajador)")
            assert driver.find_element(By.ID, "tablero").is_displayed()
            assert total_pedidos(driver)
    finally:
        set_rol("trabajador")


def test_two_open_consoles_cost_at_most_one_statistics_fetch_per_change(serve) -> None:
    """Each order changes the statistics once; two live consoles compute each change once.

    Measured without the fault paths that fetch again by design (a lock wait given up
    after CACHE_LOCK_WAIT_SECONDS, a Redis call slower than REDIS_SOCKET_TIMEOUT
    opening the breaker), which a loaded CI machine can reach: seen once in a CI run.
    """
    console, _ = serve(CACHE_LOCK_WAIT_SECONDS="5", REDIS_SOCKET_TIMEOUT="2")
    api = Api(console.url, *ADMIN)
    orders = 3
    with chromium() as first, chromium() as second:
        for driver in (first, second):
            log_in(driver, console.url, *ADMIN)
            assert wait_until(lambda d=driver: loaded(d), 15)
        wait_until(lambda: False, 3.5)  # a polling round of each: both settled
        before = statistics_fetches(api)
        start = int(total_pedidos(first))
        for n in range(1, orders + 1):
            api.place_order()
            for driver in (first, second):
                assert wait_until(lambda d=driver, n=n: total_pedidos(d) == str(start + n), 8)
            # Every statistic's fetch for this change has ended before the next order:
            # a fetch still running when the next COMMIT lands stores under the old
            # generation (harmless) and the change after it is fetched again, which is
            # not a console costing a fetch of its own.
            assert wait_until(
                lambda n=n: all(
                    statistics_fetches(api)[name] - before[name] >= n for name in STAT_NAMES
                ),
                8,
            )
        wait_until(lambda: False, 3.5)
        after = statistics_fetches(api)
    added = {name: after[name] - before[name] for name in STAT_NAMES}
    # reporte_general changes with every order: it is computed once per order, not per console.
    assert added["reporte_general"] >= 1
    faults = [
        line
        for line in console.log_path.read_text().splitlines()
        if "LOCK wait timed out" in line or "ERROR" in line or "BYPASS" in line
    ]
    assert all(n <= orders for n in added.values()), (added, faults[-20:])


def test_a_wrong_password_is_said_in_words_and_the_form_stays(console) -> None:
    with chromium() as driver:
        log_in(driver, console.url, ADMIN[0], "not-the-password")
        error = wait_until(lambda: driver.find_element(By.ID, "login-error").text, 10)
        assert error == "Usuario o contraseña incorrectos."
        unlabelled = driver.execute_script(
            "return [...document.querySelectorAll('input')]"
            ".filter(i => !i.labels.length).map(i => i.id);"
        )
        assert unlabelled == []
        assert driver.find_element(By.ID, "acceso").is_displayed()
        assert figures(driver) == {}


def test_the_server_gone_the_page_says_offline_in_words(serve) -> None:
    server, _ = serve()
    with chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: figures(driver).get("cache.readyz.cache") == "ok", 15)
        server.stop()
        assert wait_until(lambda: mode(driver) == "offline", 15), mode(driver)
        assert "offline" in driver.find_element(By.ID, "estado").text.lower()
        assert "Sin conexión con el servidor" in driver.find_element(By.ID, "aviso").text
        # The last figures stay on screen, marked by the indicator, not blanked.
        assert total_pedidos(driver)
        # The cache panel kept saying /readyz "ok" beside "read every 5 s" (a probe).
        gone = wait_until(lambda: figures(driver).get("cache.readyz.cache") == "sin respuesta", 15)
        assert gone, figures(driver).get("cache.readyz.cache")
        assert "Sin respuesta del servidor" in driver.find_element(By.ID, "cache-nota").text


def test_the_first_token_is_refreshed_a_minute_before_it_expires(serve) -> None:
    """enter() scheduled the refresh, then start() -> stop() cancelled it: the first token
    was only replaced after a 401 (a probe with 70 s tokens). With 66 s ones the refresh
    is due 6 s after the login."""
    server, _ = serve(ACCESS_TOKEN_SECONDS="66")
    with chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: refreshes(driver) >= 1, 15), "no refresh before expiry"
        assert mode(driver) == "live"
        assert driver.find_element(By.ID, "tablero").is_displayed()


def two_tabs(
    driver, url: str, first: tuple[str, str], second: tuple[str, str]
) -> tuple[str, float]:
    """`first` logged in, then `second` in a new tab, the current one after: the first
    tab's handle and when its login was asked for (time.monotonic())."""
    log_in(driver, url, *first)
    logged_in = time.monotonic()
    assert wait_until(lambda: loaded(driver), 15)
    handle = driver.current_window_handle
    driver.switch_to.new_window("tab")
    log_in(driver, url, *second)
    assert wait_until(lambda: loaded(driver), 15)
    return handle, logged_in


def test_a_login_in_another_tab_takes_the_session_and_this_tab_says_so(serve) -> None:
    """One refresh cookie per browser: after a trabajador logs in in a second tab, the
    admin tab's next refresh brings the trabajador's token. It went on as
    "admin (trabajador)" on the trabajador's session (a probe); now it lets go and says why.
    Logged in within the same second, the two tabs refreshed at the same moment with the
    one cookie: the admin tab's was reuse, 401 (quarantined, session 15, until a run showed
    its two refreshes 1 ms apart); they take turns now (the test below)."""
    # Each tab refreshes 15 s after its token: the admin tab's first refresh comes after
    # the second tab's login (had it come before, its answer could put the admin's cookie
    # back after that login).
    server, _ = serve(ACCESS_TOKEN_SECONDS="75")
    with chromium() as driver:
        admin_tab, logged_in = two_tabs(driver, server.url, ADMIN, TRABAJADOR)
        assert time.monotonic() - logged_in < 14, "the second login came after the refresh"
        trabajador_tab = driver.current_window_handle
        driver.switch_to.window(admin_tab)
        shown = wait_until(lambda: driver.find_element(By.ID, "acceso").is_displayed(), 25)
        if not shown:
            admin_seen = auth_requests(driver)
            name = driver.find_element(By.ID, "usuario-nombre").text
            driver.switch_to.window(trabajador_tab)
            pytest.fail(
                f"{name}; now "
                f"{round(time.time() * 1000)}; admin tab {admin_seen}; "
                f"trabajador tab {auth_requests(driver)}"
            )
        assert "otra pestaña" in driver.find_element(By.ID, "aviso").text
        assert figures(driver) == {}
        assert not driver.find_element(By.ID, "tablero").is_displayed()
        # The other tab's session is not logged out by this one letting go: it goes on
        # refreshing (every 15 s with these tokens) and stays on its dashboard.
        driver.switch_to.window(trabajador_tab)
        time.sleep(16)
        assert driver.find_element(By.ID, "tablero").is_displayed()
        assert driver.find_element(By.ID, "usuario-nombre").text == "trabajador (trabajador)"


def reload(driver) -> None:
    """Reload this tab and wait until the new document is the one answering."""
    before = driver.execute_script("return performance.timeOrigin;")
    driver.execute_script("setTimeout(() => location.reload(), 0);")

    def replaced() -> bool:
        try:
            return driver.execute_script("return performance.timeOrigin;") != before
        except WebDriverException:  # between the two documents
            return False

    assert wait_until(replaced, 15), "the page did not reload"


def refreshes_seen(driver) -> list[tuple[int, int]]:
    """(start, end) in epoch ms of this document's refresh requests."""
    return [
        (start, end) for path, start, end, _ in auth_requests(driver) if path.endswith("/refresh/")
    ]


def refresh_statuses(driver) -> list[int]:
    """The statuses of this document's refresh requests (none while it is being replaced)."""
    try:
        return [status for path, *_, status in auth_requests(driver) if path.endswith("/refresh/")]
    except WebDriverException:
        return []


def test_two_tabs_refreshing_at_once_send_the_one_cookie_in_turn(serve) -> None:
    """A browser holds one refresh cookie and a refresh token works once: two tabs of one
    usuario reloaded at once sent it twice, and the second use was reuse: 401, and every
    refresh token of the usuario revoked (the first tab's new one too). The proxy holds each
    refresh's answer 2 s, so the second tab asks while the first one waits."""
    from tests.consola.proxy import BufferingProxy

    server, _ = serve()
    with BufferingProxy(server.port, slow={"/api/auth/refresh/": 2}) as proxy, chromium() as driver:
        tabs = [two_tabs(driver, proxy.url, ADMIN, ADMIN)[0], driver.current_window_handle]
        for tab in tabs:  # both within the first one's held answer
            driver.switch_to.window(tab)
            driver.execute_script("setTimeout(() => location.reload(), 0);")
        seen = []
        for tab in tabs:
            driver.switch_to.window(tab)
            assert wait_until(lambda: refresh_statuses(driver), 15), "no refresh after the reload"
            assert refresh_statuses(driver) == [200]
            assert wait_until(lambda: loaded(driver), 15)
            seen += refreshes_seen(driver)
        (first_start, first_end), (second_start, second_end) = sorted(seen)
        assert second_start >= first_end, f"the two refreshes overlapped: {sorted(seen)}"
        # Nothing was revoked: the cookie the last refresh set is answered too.
        reload(driver)
        assert wait_until(lambda: refresh_statuses(driver), 15), "no refresh after the reload"
        assert refresh_statuses(driver) == [200]


def test_a_login_while_another_tab_refreshes_keeps_its_own_cookie(serve) -> None:
    """A refresh answered after another tab's login set the refreshing account's cookie
    back over the new login's: that tab, reloaded, came back as the other account. A login
    now waits for the tabs' refresh in progress (the proxy holds its answer 4 s)."""
    from tests.consola.proxy import BufferingProxy

    server, _ = serve()
    with BufferingProxy(server.port, slow={"/api/auth/refresh/": 4}) as proxy, chromium() as driver:
        log_in(driver, proxy.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        admin_tab = driver.current_window_handle
        reload(driver)  # its refresh: answered by the app, held 4 s by the proxy
        driver.switch_to.new_window("tab")
        log_in(driver, proxy.url, *TRABAJADOR)
        asked = time.time() * 1000
        assert wait_until(lambda: loaded(driver), 15)
        reload(driver)
        assert wait_until(lambda: refresh_statuses(driver), 15), "no refresh after the reload"
        assert wait_until(lambda: loaded(driver), 15)
        assert driver.find_element(By.ID, "usuario-nombre").text == "trabajador (trabajador)"
        # The login was asked for while the admin tab's refresh was waiting for its answer.
        driver.switch_to.window(admin_tab)
        assert wait_until(lambda: refreshes_seen(driver), 15)
        ((start, end),) = refreshes_seen(driver)
        assert start < asked < end, (start, asked, end)


def test_a_refresh_without_the_apps_answer_is_tried_again_and_the_session_goes_on(serve) -> None:
    """A scheduled refresh's failure was swallowed and none was scheduled after it; then
    the 401 of the expired token tried once more and, meeting the same 502, showed the
    login form: a proxy's 502 (or a 503 in a database outage) longer than the token's
    life logged the page out with its cookie still good. Now the refresh is tried every
    5 s, the page is offline meanwhile, and goes on once the app answers."""
    from tests.consola.proxy import BufferingProxy

    server, _ = serve(ACCESS_TOKEN_SECONDS="30")  # refreshes from 5 s on; expires at 30 s
    with BufferingProxy(server.port) as proxy, chromium() as driver:
        proxy.failing.add("/api/auth/refresh/")
        log_in(driver, proxy.url, *ADMIN)
        logged_in = time.monotonic()
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: 502 in refresh_statuses(driver), 20), refresh_statuses(driver)
        time.sleep(max(0.0, 36 - (time.monotonic() - logged_in)))  # the token has expired
        assert not driver.find_element(By.ID, "acceso").is_displayed(), "logged out by a 502"
        assert wait_until(lambda: mode(driver) == "offline", 10), mode(driver)
        proxy.failing.clear()
        assert wait_until(lambda: 200 in refresh_statuses(driver), 8), refresh_statuses(driver)
        assert wait_until(lambda: mode(driver) == "polling", 10), mode(driver)
        assert driver.find_element(By.ID, "tablero").is_displayed()
        assert driver.find_element(By.ID, "usuario-nombre").text == "admin (admin)"


def test_a_usuario_demoted_while_away_is_told_so_and_the_message_stays(serve) -> None:
    """Coming back to the page, its refresh set the refresh timer, and refuse() left it
    running: at that refresh (the cookie gone with refuse()'s logout) "Tu sesión expiró"
    replaced the reason, and the focus jumped to the login form."""
    server, _ = serve(ACCESS_TOKEN_SECONDS="66")
    set_rol = trabajador_rol(server.url)
    try:
        with chromium() as driver:
            log_in(driver, server.url, *TRABAJADOR)
            assert wait_until(lambda: loaded(driver), 15)
            driver.get("about:blank")  # gone before the demotion: it would notice it itself
            set_rol("cliente")
            driver.get(f"{server.url}/admin/")  # back in this tab: the session from the cookie
            told = wait_until(lambda: driver.find_element(By.ID, "sin-permiso").is_displayed(), 15)
            assert told, "not told after the reload"
            time.sleep(8)  # past the refresh the reload scheduled (6 s with these tokens)
            assert driver.find_element(By.ID, "sin-permiso").is_displayed()
            assert not driver.find_element(By.ID, "acceso").is_displayed()
    finally:
        set_rol("trabajador")


def test_a_request_answered_after_the_logout_keeps_its_words(serve) -> None:
    """A read sent before the logout and answered after it (401: its token revoked) got a
    refresh from api(), refused (the cookie cleared), and "Tu sesión expiró" replaced
    "Sesión cerrada." on the login form. The proxy holds each cache-panel read 6 s before
    the app sees it, longer than the panel's 5 s between reads: one is always out."""
    from tests.consola.proxy import BufferingProxy

    server, _ = serve()
    with (
        BufferingProxy(server.port, held={"/api/admin/cache/stats/": 6}) as proxy,
        chromium() as driver,
    ):
        log_in(driver, proxy.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        driver.find_element(By.ID, "salir").click()
        assert wait_until(lambda: driver.find_element(By.ID, "acceso").is_displayed(), 5)
        assert driver.find_element(By.ID, "aviso").text == "Sesión cerrada."
        time.sleep(7)  # the held read has reached the app with the revoked token
        assert driver.find_element(By.ID, "aviso").text == "Sesión cerrada."


def test_a_logout_in_another_tab_ends_this_tabs_session_at_its_next_refresh(serve) -> None:
    """README: a logout clears the browser's one cookie, and the other tab returns to its
    login form at its own next refresh. That refresh's 401 was swallowed: the tab kept its
    figures until its access token expired (a minute later here, 15 minutes by default)."""
    server, _ = serve(ACCESS_TOKEN_SECONDS="75")
    with chromium() as driver:
        first, logged_in = two_tabs(driver, server.url, ADMIN, ADMIN)
        driver.find_element(By.ID, "salir").click()
        assert wait_until(lambda: driver.find_element(By.ID, "acceso").is_displayed(), 5)
        assert time.monotonic() - logged_in < 14, "the logout came after the first tab's refresh"
        driver.switch_to.window(first)
        shown = wait_until(lambda: driver.find_element(By.ID, "acceso").is_displayed(), 25)
        assert shown, f"still {driver.find_element(By.ID, 'usuario-nombre').text}"
        assert "sesión expiró" in driver.find_element(By.ID, "aviso").text
        assert figures(driver) == {}
        assert refresh_statuses(driver) == [401]


@contextlib.contextmanager
def polling_behind_a_proxy(serve) -> Iterator[tuple]:
    """(server, its admin Api, a browser logged in through a buffering proxy, polling)."""
    from tests.consola.proxy import BufferingProxy

    server, _ = serve()
    api = Api(server.url, *ADMIN)
    with BufferingProxy(server.port) as proxy, chromium() as driver:
        log_in(driver, proxy.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "polling", 8), mode(driver)
        yield server, api, driver


def test_behind_a_buffering_proxy_the_page_polls_and_still_updates(serve) -> None:
    """No event reaches the page (the proxy holds the never-ending stream): it polls."""
    with polling_behind_a_proxy(serve) as (server, api, driver):
        before = int(total_pedidos(driver))
        api.place_order()
        changed = wait_until(lambda: total_pedidos(driver) == str(before + 1), 5.0, 0.05)
        assert changed, f"total_pedidos still {total_pedidos(driver)} 5 s after the order"
        assert mode(driver) == "polling"


def test_behind_a_proxy_the_apps_outage_is_offline_and_its_notice_clears_once_back(serve) -> None:
    """A probe: the proxy's 502 counted as the app's answer, so the page said "polling"
    with a fresh time while nothing came, and its "respondió 502" notice stayed after
    the app was back."""
    with polling_behind_a_proxy(serve) as (server, api, driver):
        server.stop()
        assert wait_until(lambda: mode(driver) == "offline", 15), mode(driver)
        aviso = driver.find_element(By.ID, "aviso")
        assert "Sin conexión" in aviso.text and "502" not in aviso.text, aviso.text
        server.start(timeout=90)
        before = int(total_pedidos(driver))
        api.place_order()
        back = wait_until(lambda: total_pedidos(driver) == str(before + 1), 30, 0.1)
        assert back, f"total_pedidos still {total_pedidos(driver)} after the app came back"
        assert wait_until(lambda: not aviso.is_displayed(), 10), aviso.text
        assert mode(driver) == "polling"


def test_reloading_the_page_again_and_again_keeps_it_live(serve) -> None:
    """A probe: each reload's closed stream kept its place in the usuario's four until
    its worker's next heartbeat write failed, so the 4th reload was refused (429) and
    polled for ~30 s. Each new stream now names the one it replaces."""
    server, _ = serve()
    with chromium() as driver:
        log_in(driver, server.url, *ADMIN)
        assert wait_until(lambda: loaded(driver), 15)
        assert wait_until(lambda: mode(driver) == "live", 10), mode(driver)
        for reload in range(6):
            driver.refresh()
            assert wait_until(lambda: loaded(driver), 15), reload
            live = wait_until(lambda: mode(driver) == "live", 10)
            assert live, (reload, mode(driver), driver.find_element(By.ID, "aviso").text)
