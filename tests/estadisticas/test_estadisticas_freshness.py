"""Every dependency edge: a committed write makes the next read fresh, on any worker.

Two app instances share one PostgreSQL and one Redis, as two worker processes
would. Each test warms the entry through worker A (and sees a HIT there),
commits a write (through the API, or through factories for an order placed in
the past), then reads through worker B: the answer is a MISS with new figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from electro_isla.db_types import utcnow
from electro_isla.extensions import db
from electro_isla_testing.factories import DetallePedidoFactory, PedidoFactory, ProductoFactory
from tests.helpers import user_with_role


@dataclass
class Shop:
    a: FlaskClient
    b: FlaskClient
    app_a: Flask
    admin: dict[str, str]
    cliente_id: int
    cliente: dict[str, str]
    producto_id: int
    pedido_id: int


@pytest.fixture
def shop(make_app) -> Shop:
    app_a, app_b = make_app(), make_app()
    _, admin = user_with_role(app_a, "admin")
    cliente_id, cliente = user_with_role(app_a, "cliente")
    with app_a.app_context():
        producto = ProductoFactory(nombre="Radio", precio=Decimal("10.00"), stock=50)
        otro = ProductoFactory(nombre="Nevera", precio=Decimal("300.00"), stock=5)
        # One sale already on the books, so the best sellers are not empty.
        pedido = PedidoFactory(usuario_id=cliente_id, estado="confirmado", total=Decimal("20"))
        DetallePedidoFactory(
            pedido_id=pedido.id,
            producto_id=producto.id,
            producto_nombre="Radio",
            cantidad=2,
            precio_unitario=Decimal("10.00"),
        )
        producto_id, pedido_id = producto.id, pedido.id
        assert otro.id
        db.session.remove()
    return Shop(
        app_a.test_client(),
        app_b.test_client(),
        app_a,
        admin,
        cliente_id,
        cliente,
        producto_id,
        pedido_id,
    )


def url(name: str) -> str:
    return f"/api/admin/estadisticas/{name}/"


def warm(shop: Shop, name: str) -> dict[str, Any]:
    first = shop.a.get(url(name), headers=shop.admin)
    again = shop.a.get(url(name), headers=shop.admin)
    assert first.status_code == 200 and again.headers["X-Cache"] == "HIT"
    # Worker B shares the entry: it would serve this exact body until invalidated.
    via_b = shop.b.get(url(name), headers=shop.admin)
    assert via_b.headers["X-Cache"] == "HIT"
    return again.get_json()


def read_b(shop: Shop, name: str) -> dict[str, Any]:
    response = shop.b.get(url(name), headers=shop.admin)
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "MISS", "served the pre-write entry"
    return response.get_json()


def ok(response, code: int = 200) -> dict[str, Any]:
    assert response.status_code == code, response.get_json()
    return response.get_json()


# -- writes --------------------------------------------------------------------


def crear_pedido(shop: Shop, cantidad: int = 3, metodo: str = "tarjeta") -> dict[str, Any]:
    body = {
        "items": [{"producto_id": shop.producto_id, "cantidad": cantidad}],
        "metodo_pago": metodo,
        "direccion_entrega": "Calle 2",
        "telefono": "555-0101",
    }
    return ok(shop.a.post("/api/pedidos/", json=body, headers=shop.cliente), 201)


def cambiar_estado(shop: Shop, pedido_id: int, estado: str) -> None:
    ok(
        shop.a.patch(
            f"/api/admin/pedidos/{pedido_id}/", json={"estado": estado}, headers=shop.admin
        )
    )


def patch_producto(shop: Shop, **fields: Any) -> None:
    ok(shop.a.patch(f"/api/admin/productos/{shop.producto_id}/", json=fields, headers=shop.admin))


def registrar(shop: Shop) -> dict[str, Any]:
    body = {"username": "nuevo", "email": "nuevo@example.test", "password": "secreto-123"}
    return ok(shop.a.post("/api/auth/register/", json=body), 201)


def cambiar_rol(shop: Shop, rol: str) -> None:
    ok(shop.a.patch(f"/api/admin/users/{shop.cliente_id}/", json={"rol": rol}, headers=shop.admin))


def pedido_en_el_pasado(shop: Shop) -> None:
    """A sale dated two months ago, written through factories (no API can backdate)."""
    with shop.app_a.app_context():
        pedido = PedidoFactory(
            usuario_id=shop.cliente_id,
            estado="entregado",
            metodo_pago="transferencia",
            total=Decimal("7.25"),
            created_at=utcnow() - timedelta(days=62),
        )
        DetallePedidoFactory(
            pedido_id=pedido.id,
            producto_id=shop.producto_id,
            producto_nombre="Radio",
            cantidad=1,
            precio_unitario=Decimal("7.25"),
        )
        db.session.remove()


def detalle_suelto(shop: Shop) -> None:
    """A write to detalles_pedido alone: another line on the existing sale."""
    with shop.app_a.app_context():
        DetallePedidoFactory(
            pedido_id=shop.pedido_id,
            producto_id=shop.producto_id,
            producto_nombre="Radio",
            cantidad=5,
            precio_unitario=Decimal("10.00"),
        )
        db.session.remove()


# -- checks --------------------------------------------------------------------


def meses_total(body: dict[str, Any]) -> int:
    return sum(m["pedidos"] for m in body["ventas_por_mes"])


def radio(body: dict[str, Any]) -> dict[str, Any]:
    return body["productos_mas_vendidos"][0]


def rol_count(body: dict[str, Any], rol: str) -> int:
    return next(r["count"] for r in body["usuarios_por_rol"] if r["rol"] == rol)


@dataclass(frozen=True)
class Edge:
    endpoint: str
    table: str
    write: Callable[[Shop], Any]
    changed: Callable[[dict[str, Any], dict[str, Any]], bool]


EDGES = {
    # ventas <- pedidos: a new order is pendiente (no sale); confirming it makes a sale.
    "ventas<-pedidos(estado)": Edge(
        "ventas",
        "pedidos",
        lambda s: cambiar_estado(s, crear_pedido(s)["id"], "confirmado"),
        lambda old, new: (
            meses_total(new) == meses_total(old) + 1
            and radio(new)["cantidad_vendida"] == radio(old)["cantidad_vendida"] + 3
        ),
    ),
    "ventas<-pedidos(cancel)": Edge(
        "ventas",
        "pedidos",
        lambda s: cambiar_estado(s, s.pedido_id, "cancelado"),
        lambda old, new: (
            meses_total(new) == meses_total(old) - 1
            and new["productos_mas_vendidos"] == []
            and new["ticket_promedio"] == 0
        ),
    ),
    "ventas<-pedidos(past,factories)": Edge(
        "ventas",
        "pedidos",
        pedido_en_el_pasado,
        lambda old, new: (
            meses_total(new) == meses_total(old) + 1
            and any(m["metodo_pago"] == "transferencia" for m in new["metodos_pago"])
        ),
    ),
    "ventas<-detalles_pedido": Edge(
        "ventas",
        "detalles_pedido",
        detalle_suelto,
        lambda old, new: (
            radio(new)["cantidad_vendida"] == radio(old)["cantidad_vendida"] + 5
            and radio(new)["ingresos"] == radio(old)["ingresos"] + 50
        ),
    ),
    "ventas<-productos(nombre)": Edge(
        "ventas",
        "productos",
        lambda s: patch_producto(s, nombre="Radio FM"),
        lambda old, new: (
            radio(old)["producto__nombre"] == "Radio"
            and radio(new)["producto__nombre"] == "Radio FM"
        ),
    ),
    "usuarios<-usuarios(register)": Edge(
        "usuarios",
        "usuarios",
        registrar,
        lambda old, new: (
            rol_count(new, "cliente") == rol_count(old, "cliente") + 1
            and new["usuarios_por_mes"][-1]["nuevos"] == old["usuarios_por_mes"][-1]["nuevos"] + 1
        ),
    ),
    "usuarios<-usuarios(rol)": Edge(
        "usuarios",
        "usuarios",
        lambda s: cambiar_rol(s, "mensajero"),
        lambda old, new: (
            rol_count(new, "mensajero") == rol_count(old, "mensajero") + 1
            and rol_count(new, "cliente") == rol_count(old, "cliente") - 1
        ),
    ),
    "usuarios<-pedidos": Edge(
        "usuarios",
        "pedidos",
        crear_pedido,
        lambda old, new: (
            old["usuarios_recurrentes"] == 0
            and new["usuarios_recurrentes"] == 1
            and new["tasa_retencion"] == 100
            and new["usuarios_mas_activos"][0]["pedidos_count"] == 2
        ),
    ),
    "productos<-productos(precio,stock)": Edge(
        "productos",
        "productos",
        lambda s: patch_producto(s, precio=12.5, stock=4),
        lambda old, new: (
            old["valor_inventario"] == 2000
            and new["valor_inventario"] == 1550
            and [p["id"] for p in new["stock_bajo"]][0] != [p["id"] for p in old["stock_bajo"]][0]
        ),
    ),
    "productos<-productos(nombre)": Edge(
        "productos",
        "productos",
        lambda s: patch_producto(s, nombre="Radio FM"),
        lambda old, new: (
            {p["nombre"] for p in new["productos_mas_rentables"]} == {"Radio FM", "Nevera"}
        ),
    ),
    "productos<-productos(stock taken by an order)": Edge(
        "productos",
        "productos",
        lambda s: crear_pedido(s, cantidad=50),
        lambda old, new: new["productos_sin_stock"] == old["productos_sin_stock"] + 1,
    ),
    "reporte<-usuarios": Edge(
        "reporte",
        "usuarios",
        registrar,
        lambda old, new: new["resumen"]["total_usuarios"] == old["resumen"]["total_usuarios"] + 1,
    ),
    "reporte<-productos": Edge(
        "reporte",
        "productos",
        lambda s: patch_producto(s, activo=False),
        lambda old, new: new["resumen"]["total_productos"] == old["resumen"]["total_productos"] - 1,
    ),
    "reporte<-pedidos(create)": Edge(
        "reporte",
        "pedidos",
        crear_pedido,
        lambda old, new: (
            new["resumen"]["total_pedidos"] == old["resumen"]["total_pedidos"] + 1
            and new["resumen"]["pedidos_pendientes"] == old["resumen"]["pedidos_pendientes"] + 1
            and new["resumen"]["pedidos_mes"] == old["resumen"]["pedidos_mes"] + 1
        ),
    ),
    "reporte<-pedidos(estado)": Edge(
        "reporte",
        "pedidos",
        lambda s: cambiar_estado(s, s.pedido_id, "en_preparacion"),
        lambda old, new: (
            new["resumen"]["pedidos_en_proceso"] == old["resumen"]["pedidos_en_proceso"]
            and new["resumen"]["ingresos_totales"] == old["resumen"]["ingresos_totales"]
            and new["generado_en"] != old["generado_en"]
        ),
    ),
    "reporte<-pedidos(cancel)": Edge(
        "reporte",
        "pedidos",
        lambda s: cambiar_estado(s, s.pedido_id, "cancelado"),
        lambda old, new: (
            new["resumen"]["ingresos_totales"] == 0
            and new["resumen"]["pedidos_en_proceso"] == old["resumen"]["pedidos_en_proceso"] - 1
        ),
    ),
}


@pytest.mark.parametrize("edge", EDGES.values(), ids=EDGES.keys())
def test_committed_write_is_seen_by_the_next_read_on_another_worker(shop, edge):
    old = warm(shop, edge.endpoint)
    edge.write(shop)
    new = read_b(shop, edge.endpoint)
    assert edge.changed(old, new), (old, new)
    # And worker A agrees (a HIT now, on the fresh entry).
    again = shop.a.get(url(edge.endpoint), headers=shop.admin)
    assert again.headers["X-Cache"] == "HIT" and again.get_json() == new


def test_every_declared_dependency_has_a_freshness_test():
    from electro_isla.cache.registry import REGISTRY

    names = {
        "ventas": "estadisticas_ventas",
        "usuarios": "estadisticas_usuarios",
        "productos": "estadisticas_productos",
        "reporte": "reporte_general",
    }
    tested = {(names[e.endpoint], e.table) for e in EDGES.values()}
    declared = {(n, t) for n in names.values() for t in REGISTRY[n].tables}
    assert declared == tested
