"""Structure the code promises: no import circle auth <-> usuarios, derived column lists."""

from __future__ import annotations

import subprocess
import sys

import pytest
from marshmallow import Schema, fields

from electro_isla.cache.registry import PRODUCTO_COLUMNS, REGISTRY, document_columns
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import ProductoSchema


def test_usuarios_service_does_not_import_the_request_machinery_of_auth():
    """auth/permissions.py reads usuarios/service.py; never the other way round."""
    code = (
        "import sys, electro_isla.usuarios.service; "
        "print('electro_isla.auth.permissions' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_producto_columns_are_what_the_producto_document_shows():
    shown = set(ProductoSchema().fields) - {"precio_final"}
    assert shown | {"precio", "descuento"} == PRODUCTO_COLUMNS
    assert set(Producto.__table__.columns.keys()) >= PRODUCTO_COLUMNS
    assert REGISTRY["producto"].reads["productos"] is PRODUCTO_COLUMNS


def test_a_new_field_is_watched_and_an_undeclared_computed_one_is_refused():
    class Menos(Schema):
        id = fields.Integer()
        nombre = fields.String(attribute="nombre", data_key="titulo")

    assert document_columns(Menos(), Producto, {}) == {"id", "nombre"}

    class ConCalculo(Menos):
        ahorro = fields.Decimal()

    with pytest.raises(ValueError, match="ahorro"):
        document_columns(ConCalculo(), Producto, {})
    declared = {"ahorro": frozenset({"precio", "descuento"})}
    assert document_columns(ConCalculo(), Producto, declared) == {
        "id",
        "nombre",
        "precio",
        "descuento",
    }
