"""Redis killed, restarted and paused under concurrent traffic on a real gunicorn.

The API must keep answering from the database (X-Cache: BYPASS), quickly, with no
5xx; a write made while Redis hangs must not be hidden by an old entry once it
answers again; and the orders placed meanwhile must all add up.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest
import requests

from electro_isla_testing.factories import UsuarioFactory
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.servers import RedisServer
from tests.drills.harness import Traffic, audit_orders, buyer, open_shop, running, shopper
from tests.helpers import auth_headers

MAX_LATENCY = 2.0


def staff_poller(traffic: Traffic, headers: dict[str, str]):  # noqa: ANN201
    paths = [
        f"/api/admin/estadisticas/{n}/" for n in ("ventas", "usuarios", "productos", "reporte")
    ]

    def loop(session: requests.Session, rng: random.Random) -> None:
        traffic.request(session, "estadisticas", "GET", rng.choice(paths), headers=headers)
        time.sleep(0.05)

    return loop


@pytest.mark.slow
def test_redis_killed_restarted_and_paused_under_traffic(drill_app, drill_db, drill_redis):
    server = GunicornServer(drill_db, drill_redis.url)
    app = drill_app(server.prefix)
    shop = open_shop(app, "25.00")
    initial, headers = shop.initial, shop.clientes
    objetivo = next(iter(initial))
    with app.app_context():
        admin_id = UsuarioFactory(rol="admin").id
    admin = auth_headers(app, admin_id)
    redis = drill_redis
    restarted: RedisServer | None = None
    server.start()
    try:
        traffic = Traffic(server.url, timeout=15)
        with running(traffic):
            traffic.spawn(shopper(traffic, list(initial)), 3)
            traffic.spawn(buyer(traffic, list(initial), headers), 3)
            traffic.spawn(staff_poller(traffic, admin), 1)
            time.sleep(1.5)

            t_kill = time.monotonic()
            redis.kill()
            time.sleep(2.0)
            restarted = RedisServer(port=redis.port).start()
            t_back = time.monotonic()
            time.sleep(3.0)

            t_pause = time.monotonic()
            restarted.pause()
            time.sleep(0.5)
            with requests.Session() as s:
                patch = s.patch(
                    f"{server.url}/api/admin/productos/{objetivo}/",
                    json={"precio": 99.5},
                    headers=admin,
                    timeout=15,
                )
            t_patched = time.monotonic()
            time.sleep(1.5)
            restarted.resume()
            t_resume = time.monotonic()
            time.sleep(3.5)
        stats = requests.get(f"{server.url}/api/admin/cache/stats/", headers=admin, timeout=5)
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()

    assert patch.status_code == 200, patch.text
    statuses = traffic.statuses()
    assert None not in statuses, [o.error for o in traffic.outcomes if o.status is None][:3]
    assert not [s for s in statuses if s >= 500], (statuses, server.errors_logged())
    assert set(traffic.statuses("pedido")) <= {201, 409}, statuses
    assert {s for s in statuses if s < 300} == {200, 201}
    slow = [(o.kind, round(o.elapsed, 2)) for o in traffic.outcomes if o.elapsed > MAX_LATENCY]
    assert not slow, f"requests slower than {MAX_LATENCY}s during the drill: {slow[:5]}"

    reads = [o for o in traffic.outcomes if o.kind in ("lista", "detalle") and o.status == 200]
    assert any(o.headers.get("X-Cache") == "BYPASS" for o in reads if t_kill < o.started < t_back)
    assert any(o.headers.get("X-Cache") == "HIT" for o in reads if o.started > t_resume + 2.5), (
        "the cache never came back after the outage"
    )
    # Every read of the product after the PATCH answered shows the new price.
    for o in reads:
        if o.kind == "detalle" and o.body.get("id") == objetivo and o.started > t_patched:
            assert Decimal(str(o.body["precio"])) == Decimal("99.50"), (
                f"stale producto served {o.started - t_pause:.2f}s after the pause began "
                f"(X-Cache {o.headers.get('X-Cache')})"
            )
    assert stats.status_code == 200
    audit_orders(drill_db, traffic, initial)
    assert sum(1 for o in traffic.outcomes if o.kind == "pedido" and o.status == 201) > 10
