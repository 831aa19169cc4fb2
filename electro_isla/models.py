"""Every domain's models in one place, so Alembic and the cache listeners see them all."""

from electro_isla.auth.models import RefreshToken, RevokedToken
from electro_isla.cache.models import OutboxEntry
from electro_isla.catalogo.models import Producto
from electro_isla.estadisticas import models as estadisticas_models  # noqa: F401 (rollup tables)
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla.usuarios.models import Usuario

__all__ = [
    "DetallePedido",
    "OutboxEntry",
    "Pedido",
    "Producto",
    "RefreshToken",
    "RevokedToken",
    "Usuario",
]
