"""Usuario queries and commands."""

from __future__ import annotations

from typing import Any

from electro_isla.extensions import db
from electro_isla.usuarios.models import Usuario


def perfil_data(usuario_id: int) -> dict[str, Any] | None:
    """What the cached `perfil_usuario_<id>` entry holds (the /api/perfil/ shape)."""
    usuario = db.session.get(Usuario, usuario_id)
    if usuario is None:
        return None
    return {
        "id": usuario.id,
        "username": usuario.username,
        "email": usuario.email,
        "first_name": usuario.first_name,
        "last_name": usuario.last_name,
        "nombre": usuario.nombre,
        "rol": usuario.rol,
        "is_active": usuario.is_active,
        "date_joined": usuario.date_joined,
        "telefono": usuario.telefono,
        "direccion": usuario.direccion,
    }
