"""PostgreSQL stopped and started again: 503 JSON while it is down, recovery without a restart."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import event, func, select

from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario
from electro_isla_testing.factories import ProductoFactory, UsuarioFactory
from electro_isla_testing.gunicorn import GunicornServer
from tests.drills.conftest import database_rows
from tests.drills.harness import (
    Traffic,
    audit_orders,
    buyer,
    is_error_envelope,
    open_shop,
    running,
    shopper,
)
from tests.helpers import auth_headers


def test_database_down_is_a_503_envelope_and_the_app_recovers(drill_app, drill_pg, caplog):
    app = drill_app("drill503")

    @app.get("/_drill/usuarios")
    def contar_usuarios():  # noqa: ANN202
        return {"usuarios": db.session.scalar(select(func.count(Usuario.id)))}

    client = app.test_client()
    assert client.get("/_drill/usuarios").json == {"usuarios": 0}

    drill_pg.stop("fast")
    try:
        resp = client.get("/_drill/usuarios")
        assert resp.status_code == 503
        assert resp.json["code"] == 503
        assert resp.json["status"] == "Service Unavailable"
        assert "database" in resp.json["message"].lower()
        assert "Traceback" not in resp.get_data(as_text=True)
        assert resp.headers["Retry-After"].isdigit()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        # The log says why (the driver's words), not only "OperationalError".
        said = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
        assert said and "OperationalError: " in said[0], said
        assert "connection" in said[0].lower() or "server" in said[0].lower(), said
    finally:
        drill_pg.start_again()

    # Same app object, same pool: pool_pre_ping throws the dead connections away.
    assert client.get("/_drill/usuarios").json == {"usuarios": 0}
    assert client.get("/readyz").status_code == 200


def test_database_shut_down_after_the_last_query_does_not_turn_the_answer_into_a_500(
    drill_app, drill_pg
):
    """The session's ROLLBACK at teardown meets a killed connection: the answer still stands."""
    app = drill_app("drillteardown")

    @app.get("/_drill/consulta-y-caida")
    def consulta_y_caida():  # noqa: ANN202
        usuarios = db.session.scalar(select(func.count(Usuario.id)))
        drill_pg.stop("fast")  # the transaction is still open; teardown will roll it back
        return {"usuarios": usuarios}

    @app.get("/_drill/usuarios")
    def contar_usuarios():  # noqa: ANN202
        return {"usuarios": db.session.scalar(select(func.count(Usuario.id)))}

    client = app.test_client()
    try:
        resp = client.get("/_drill/consulta-y-caida")
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        assert resp.json == {"usuarios": 0}
        assert client.get("/_drill/usuarios").status_code == 503
    finally:
        drill_pg.start_again()
    assert client.get("/_drill/usuarios").json == {"usuarios": 0}


@pytest.mark.slow
def test_database_stopped_under_order_traffic(drill_app, drill_db, drill_redis, drill_pg):
    """gunicorn, 2 workers; buyers and shoppers run while PostgreSQL stops for ~2 s."""
    server = GunicornServer(drill_db, drill_redis.url)
    app = drill_app(server.prefix)
    shop = open_shop(app, "10.00")
    initial, headers = shop.initial, shop.clientes
    server.start()
    try:
        traffic = Traffic(server.url, timeout=15)
        with running(traffic):
            traffic.spawn(buyer(traffic, list(initial), headers), 4)
            traffic.spawn(shopper(traffic, list(initial)), 3)
            time.sleep(1.5)
            stopped_at = time.monotonic()
            drill_pg.stop("fast")
            time.sleep(2.0)
            drill_pg.start_again()
            restarted_at = time.monotonic()
            deadline = restarted_at + 15
            while time.monotonic() < deadline:
                if any(
                    o.kind == "pedido" and o.status == 201 and o.started > restarted_at
                    for o in list(traffic.outcomes)
                ):
                    break
                time.sleep(0.2)
            time.sleep(1.0)
        ready = requests.get(server.url + "/readyz", timeout=5)
    finally:
        server.stop()

    orders = [o for o in traffic.outcomes if o.kind == "pedido"]
    statuses = traffic.statuses()
    assert None not in statuses, [o.error for o in traffic.outcomes if o.status is None][:3]
    assert {s for s in statuses if s >= 500} <= {503}, (statuses, server.errors_logged())
    assert set(traffic.statuses("pedido")) <= {201, 409, 503}, statuses
    for o in traffic.outcomes:
        if o.status == 503:
            assert is_error_envelope(o), o.body
    during = [o for o in orders if stopped_at <= o.started < restarted_at]
    assert any(o.status == 503 for o in during), "no order met the outage"
    assert any(o.status == 201 and o.started > restarted_at for o in orders), "no recovery"
    assert ready.status_code == 200, ready.text
    audit_orders(drill_db, traffic, initial)


def test_order_committed_just_before_the_database_dies_is_not_answered_as_refused(
    drill_app, drill_db, drill_pg
):
    """PostgreSQL stops between the order's COMMIT and the response.

    The order is stored, so the client must be told 201. Re-reading the committed
    (expired) pedido to serialise it would fail and answer 503 for a stored order.
    """
    app = drill_app("drillcommit")
    with app.app_context():
        producto_id = ProductoFactory(stock=5, precio="10.00").id
        uid = UsuarioFactory(rol="cliente").id
    headers = auth_headers(app, uid)
    client = app.test_client()
    client.get(f"/api/productos/{producto_id}/")  # warm the pool and the cache
    stopped = []

    def stop_database(session):  # noqa: ANN001, ANN202
        if not stopped:
            stopped.append(True)
            drill_pg.stop("fast")

    with app.app_context():
        event.listen(db.session, "after_commit", stop_database)
    try:
        resp = client.post(
            "/api/pedidos/",
            json={
                "items": [{"producto_id": producto_id, "cantidad": 2}],
                "metodo_pago": "efectivo",
                "direccion_entrega": "Calle 1",
                "telefono": "555-0100",
                "notas": "committed-then-crash",
            },
            headers=headers,
        )
    finally:
        with app.app_context():
            event.remove(db.session, "after_commit", stop_database)
        drill_pg.start_again()
    assert stopped, "the order never committed"
    stored = database_rows(drill_db, "SELECT id FROM pedidos WHERE notas = 'committed-then-crash'")
    assert len(stored) == 1
    assert resp.status_code == 201, (resp.status_code, resp.json)
    assert resp.json["id"] == stored[0][0]
