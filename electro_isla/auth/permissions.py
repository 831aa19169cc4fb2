"""Who is calling: the bearer token, checked against current data on every request.

The token says who; the role and `is_active` come from the `perfil_usuario`
cache entry (invalidated on every write to that usuario), so a demotion or a
deactivation takes effect on the very next request while a hit costs no SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request
from flask_smorest import abort

from electro_isla.auth import tokens as _tokens  # noqa: F401  (installs the JWT callbacks)
from electro_isla.cache import cache_manager
from electro_isla.usuarios.models import STAFF_ROLES

F = TypeVar("F", bound=Callable[..., Any])

STAFF = tuple(sorted(STAFF_ROLES))


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    email: str
    rol: str
    is_active: bool

    @property
    def is_staff(self) -> bool:
        return self.rol in STAFF_ROLES


def load_perfil(usuario_id: int) -> dict[str, Any] | None:
    """The cached profile of a usuario (None when the row is gone)."""
    from electro_isla.usuarios.service import perfil_data

    return cache_manager.get(
        "perfil_usuario", lambda: perfil_data(usuario_id), row=usuario_id, record=False
    )


def authenticate() -> Actor:
    """401 unless a valid, unrevoked token names an active usuario."""
    verify_jwt_in_request()
    try:
        usuario_id = int(get_jwt_identity())
    except (TypeError, ValueError):
        abort(401, message="Invalid token subject.")
    perfil = load_perfil(usuario_id)
    if not perfil or not perfil["is_active"]:
        abort(401, message="This account is inactive or no longer exists.")
    actor = Actor(
        id=perfil["id"],
        username=perfil["username"],
        email=perfil["email"],
        rol=perfil["rol"],
        is_active=perfil["is_active"],
    )
    g.actor = actor
    g.perfil = perfil
    return actor


def current_actor() -> Actor:
    return g.actor


def roles_required(*roles: str) -> Callable[[F], F]:
    """Authenticate, then 403 unless the caller's current role is one of `roles`.

    With no roles, any authenticated usuario passes.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = authenticate()
            if roles and actor.rol not in roles:
                abort(403, message="You do not have permission to do this.")
            return view(*args, **kwargs)

        wrapper._roles = roles  # type: ignore[attr-defined]  # read by the OpenAPI docs
        return wrapper  # type: ignore[return-value]

    return decorator


login_required = roles_required()
staff_required = roles_required(*STAFF)
admin_required = roles_required("admin")
