"""A conditional wait the server does not hold answers what a plain GET answers.

When the wait cannot be held (LIVE_MAX_WAIT=0, every slot taken, the hub not
usable), the request is answered at once. It was answered from the hub's copy
when the client's tag matched it: a copy that may still miss a write whose hint
is on its way (a held wait would be woken by that hint; one answered at once is
not). A probe saw 304s for the old tag up to 0.9 s after a write's 200 (Redis
killed), 20 ms with LIVE_MAX_WAIT=0, 70 ms with the slots taken.
"""

from __future__ import annotations

import time

import pytest

from electro_isla.live import live_of
from tests.helpers import user_with_role

URL = "/api/admin/estadisticas/usuarios/"


@pytest.mark.parametrize("held", ["max_wait_0", "hub_not_usable"])
def test_a_wait_answered_at_once_is_as_fresh_as_a_get(make_app, held):
    # A long recheck: the hub's copy stays "current" (read within two rechecks) for the
    # whole test, however slow the machine; else the old code could pass by chance.
    settings = {"LIVE_READ_REFRESH_SECONDS": 60, "LIVE_RECHECK_MS": 10_000}
    if held == "max_wait_0":
        settings["LIVE_MAX_WAIT"] = 0
    app = make_app(**settings)
    client = app.test_client()
    _uid, admin = user_with_role(app, "admin")
    hub = live_of(app).hub
    try:
        first = client.get(URL, headers=admin)
        assert first.status_code == 200
        hub.sync("usuarios", time.monotonic())  # the hub's copy is the one just answered
        assert hub.current("usuarios").etag == first.headers["ETag"].strip('"')
        # The next change's hint is "on its way": the hub does not refresh again.
        hub.refresh = lambda: False  # type: ignore[method-assign]
        if held == "hub_not_usable":
            hub.usable = lambda: False  # type: ignore[method-assign]
        user_with_role(app, "cliente")  # a write answered: one more usuario
        assert hub.current("usuarios").etag == first.headers["ETag"].strip('"')  # still
        again = client.get(
            URL, headers={**admin, "If-None-Match": first.headers["ETag"], "Prefer": "wait=5"}
        )
        plain = client.get(URL, headers=admin)
        assert again.status_code == 200, "a 304 for figures from before the write"
        assert again.get_json() == plain.get_json() != first.get_json()
        assert "Preference-Applied" not in again.headers
    finally:
        hub.stop()
