"""Who is calling: the bearer token, checked against current data on every request.

The token says who; the role and `is_active` come from the `acceso_usuario`
cache entry, invalidated on every write to that usuario through the app, so a
demotion or a deactivation takes effect on the very next request while a hit
costs no SQL. Its TTL is short (60 s, `CACHE_TTL_ACCESO_USUARIO`): a change
made behind the app's back (raw SQL) takes effect within it, not within the
hour the profile entry lives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_smorest import abort

from electro_isla.auth.actor import Actor
from electro_isla.auth.tokens import token_subject  # importing it installs the JWT callbacks
from electro_isla.cache import cache_manager
from electro_isla.usuarios.models import STAFF_ROLES
from electro_isla.usuarios.service import acceso_data

F = TypeVar("F", bound=Callable[..., Any])

STAFF = tuple(sorted(STAFF_ROLES))


def load_acceso(usuario_id: int) -> dict[str, Any] | None:
    """Who the usuario is and may be, cached briefly (None when the row is gone)."""
    return cache_manager.get(
        "acceso_usuario", lambda: acceso_data(usuario_id), row=usuario_id, record=False
    )


def authenticate() -> Actor:
    """401 unless a valid, unrevoked token names an active usuario.

    The usuario's `acceso_usuario` entry is looked up in the revocation check's
    round trip (cache/ahead.py), and so is what the view asked for ahead.
    """
    cache_manager.ask_ahead("acceso_usuario", callers_row=True)
    verify_jwt_in_request()
    usuario_id = token_subject(get_jwt())
    if usuario_id is None:  # tokens.py's verification refused it already
        abort(401, message="Invalid token subject.")
    acceso = load_acceso(usuario_id)
    if not acceso or not acceso["is_active"]:
        abort(401, message="This account is inactive or no longer exists.")
    actor = Actor(
        id=acceso["id"],
        username=acceso["username"],
        email=acceso["email"],
        rol=acceso["rol"],
        is_active=acceso["is_active"],
    )
    g.actor = actor
    g.acceso = acceso
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

        return wrapper  # type: ignore[return-value]

    return decorator


login_required = roles_required()
staff_required = roles_required(*STAFF)
admin_required = roles_required("admin")
