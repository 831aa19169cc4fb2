"""Tokens and credentials."""

from __future__ import annotations

from flask_jwt_extended import create_access_token

from electro_isla.usuarios.models import Usuario


def issue_access_token(usuario: Usuario) -> str:
    """A 15-minute HS256 access token with the contract's claims."""
    return create_access_token(
        identity=str(usuario.id),
        additional_claims={
            "username": usuario.username,
            "email": usuario.email,
            "rol": usuario.rol,
        },
    )
