"""factory_boy factories; they commit through the app's session (needs an app context)."""

from __future__ import annotations

import functools
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory
from flask import Flask
from werkzeug.security import generate_password_hash

from electro_isla.auth.service import issue_access_token
from electro_isla.catalogo.models import Producto
from electro_isla.extensions import db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

PASSWORD = "secreto-123"


@functools.cache
def _cheap_hash(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UsuarioFactory(BaseFactory):
    class Meta:
        model = Usuario

    username = factory.Sequence(lambda n: f"usuario{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    rol = "cliente"
    is_active = True
    password_hash = ""

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):  # noqa: N805
        # The app hashes with scrypt (~0.3 s); tests only need a hash that checks.
        obj.password_hash = _cheap_hash(extracted or PASSWORD)
        if create:
            db.session.commit()


class ProductoFactory(BaseFactory):
    class Meta:
        model = Producto

    nombre = factory.Sequence(lambda n: f"Producto {n}")
    descripcion = "Un producto de prueba"
    precio = Decimal("100.00")
    descuento = 0
    stock = 10
    categoria = "otros"
    activo = True


class PedidoFactory(BaseFactory):
    class Meta:
        model = Pedido
        exclude = ("usuario",)

    usuario_id = factory.LazyFunction(lambda: UsuarioFactory().id)
    estado = "pendiente"
    metodo_pago = "efectivo"
    total = Decimal("0.00")
    direccion_entrega = "Calle 1"
    telefono = "555-0100"


class DetallePedidoFactory(BaseFactory):
    class Meta:
        model = DetallePedido

    pedido_id = factory.LazyFunction(lambda: PedidoFactory().id)
    producto_id = factory.LazyFunction(lambda: ProductoFactory().id)
    producto_nombre = "Producto"
    cantidad = 1
    precio_unitario = Decimal("100.00")
    subtotal = factory.LazyAttribute(lambda o: o.precio_unitario * o.cantidad)


def auth_headers(app: Flask, usuario: Usuario | int) -> dict[str, str]:
    """Bearer headers for `usuario` (a model or an id)."""
    with app.app_context():
        if isinstance(usuario, int):
            usuario = db.session.get(Usuario, usuario)
        else:
            usuario = db.session.merge(usuario)
        token = issue_access_token(usuario)
    return {"Authorization": f"Bearer {token}"}
