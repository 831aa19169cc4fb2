"""Usuario queries and commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_smorest import abort
from sqlalchemy import Select, or_, select, update

from electro_isla.auth.actor import Actor
from electro_isla.cache import cache_manager
from electro_isla.extensions import db
from electro_isla.pagination import paginate
from electro_isla.search import matching
from electro_isla.usuarios.models import (
    Usuario,
    mismo_username,
    normalize_email,
    normalize_username,
)
from electro_isla.usuarios.schemas import UsuarioSchema

ULTIMO_ADMIN = "The last active admin cannot be deactivated or demoted."


class UltimoAdmin(Exception):
    """A change that would leave no active admin (the CLI's 409)."""


# The cached entries hold what the API shows, dumped by the one schema that says it.
PERFIL = UsuarioSchema()
ACCESO = UsuarioSchema(only=("id", "username", "email", "nombre", "rol", "is_active"))


def perfil_data(usuario_id: int) -> dict[str, Any] | None:
    """What the cached `perfil_usuario_<id>` entry holds (the /api/perfil/ shape)."""
    usuario = db.session.get(Usuario, usuario_id)
    return None if usuario is None else PERFIL.dump(usuario)


def acceso_data(usuario_id: int) -> dict[str, Any] | None:
    """What the cached `acceso_usuario_<id>` entry holds: who the caller is, and may be."""
    usuario = db.session.get(Usuario, usuario_id)
    return None if usuario is None else ACCESO.dump(usuario)


def posturas(usuario_ids: Iterable[int]) -> dict[int, tuple[str, bool]]:
    """(rol, is_active) of each usuario that still exists, in one query: the live
    re-checks read many usuarios at once (live/recheck.py)."""
    ids = sorted(set(usuario_ids))
    if not ids:
        return {}
    stmt = select(Usuario.id, Usuario.rol, Usuario.is_active).where(Usuario.id.in_(ids))
    return {row.id: (row.rol, bool(row.is_active)) for row in db.session.execute(stmt)}


def obtener_perfil(usuario_id: int) -> dict[str, Any]:
    """The caller's own profile, from the `perfil_usuario` cache entry."""
    perfil = cache_manager.get("perfil_usuario", lambda: perfil_data(usuario_id), row=usuario_id)
    if perfil is None:
        abort(404, message="Usuario not found.")
    return perfil


def usuarios_query(
    q: str | None = None, rol: str | None = None, activo: bool | None = None
) -> Select:
    stmt = select(Usuario).order_by(Usuario.id)
    found = matching((Usuario.username, Usuario.email, Usuario.first_name, Usuario.last_name), q)
    if found is not None:
        stmt = stmt.where(found)
    if rol is not None:
        stmt = stmt.where(Usuario.rol == rol)
    if activo is not None:
        stmt = stmt.where(Usuario.is_active.is_(activo))
    return stmt


def listar_usuarios(
    page: int,
    page_size: int,
    q: str | None = None,
    rol: str | None = None,
    activo: bool | None = None,
) -> tuple[int, list[Usuario]]:
    return paginate(usuarios_query(q, rol, activo), page, page_size)


def get_usuario_or_404(usuario_id: int) -> Usuario:
    usuario = db.session.get(Usuario, usuario_id)
    if usuario is None:
        abort(404, message="Usuario not found.")
    return usuario


ONLY_AN_ADMIN = "Only an admin can edit an admin or grant the admin role."


def usuario_editable_or_404(actor: Actor, usuario_id: int) -> Usuario:
    """The usuario `actor` may edit: 404 when there is none, 403 when a trabajador names an
    admin, whatever the body says (DRF checks object permissions before the serializer)."""
    usuario = get_usuario_or_404(usuario_id)
    if actor.rol != "admin" and usuario.rol == "admin":
        abort(403, message=ONLY_AN_ADMIN)
    return usuario


def actualizar_usuario(actor: Actor, usuario_id: int, cambios: dict[str, Any]) -> Usuario:
    """Staff edit of a usuario. A trabajador can neither touch an admin nor make one.

    Nobody deactivates their own account or changes their own role: the only admin
    doing so would lock every admin out, and nothing in the API could undo it.
    """
    usuario = usuario_editable_or_404(actor, usuario_id)
    if actor.rol != "admin":
        if cambios.get("rol") == "admin":
            abort(403, message=ONLY_AN_ADMIN)
        usuario = _aun_no_admin(usuario_id)
    if usuario.id == actor.id and (
        cambios.get("rol", usuario.rol) != usuario.rol
        or cambios.get("is_active", usuario.is_active) != usuario.is_active
    ):
        abort(
            403,
            message="You cannot deactivate your own account or change its role; another admin can.",
        )
    try:
        _conserva_un_admin(usuario, cambios)
    except UltimoAdmin as exc:
        abort(409, message=str(exc))
    return _guardar(usuario, cambios)


def _aun_no_admin(usuario_id: int) -> Usuario:
    """For a trabajador's write: the usuario, read again once no admin can be made of it
    until COMMIT; 403 if one was meanwhile, 404 if it is gone.

    A guarded UPDATE that changes nothing takes the row's lock on PostgreSQL (waiting for
    an admin's promotion in flight, then seeing it) and the write lock on SQLite, so the
    check and the write cannot be split by a promotion (a probe: 7 of 40 raced PATCHes
    of a trabajador landed on a usuario an admin had just promoted).
    """
    usuarios = Usuario.__table__
    sigue = db.session.connection().execute(
        update(usuarios)
        .where(usuarios.c.id == usuario_id, usuarios.c.rol != "admin")
        .values(rol=usuarios.c.rol)
    )
    usuario = db.session.get(Usuario, usuario_id, populate_existing=True)
    if usuario is None:
        abort(404, message="Usuario not found.")
    if sigue.rowcount == 0:
        abort(403, message=ONLY_AN_ADMIN)
    return usuario


def _guardar(usuario: Usuario, cambios: dict[str, Any]) -> Usuario:
    """Apply `cambios` and COMMIT (the mapper events invalidate what it changed)."""
    for field, value in cambios.items():
        setattr(usuario, field, value)
    db.session.commit()
    return usuario


def _sigue_admin(cambios: dict[str, Any]) -> bool:
    return cambios.get("rol", "admin") == "admin" and cambios.get("is_active", True) is True


def _conserva_un_admin(usuario: Usuario, cambios: dict[str, Any]) -> None:
    """UltimoAdmin (the transaction rolled back) when `cambios` would leave no active
    admin. The active admins are locked until COMMIT, so two admins deactivating
    each other at once cannot both pass: the second waits, then sees the first's change."""
    if usuario.rol != "admin" or not usuario.is_active or _sigue_admin(cambios):
        return
    activos = db.session.scalars(
        select(Usuario.id)
        .where(Usuario.rol == "admin", Usuario.is_active.is_(True))
        .with_for_update()
    ).all()
    if not set(activos) - {usuario.id}:
        db.session.rollback()
        raise UltimoAdmin(ULTIMO_ADMIN)


def ajustar_usuario(username: str, rol: str | None, activo: bool | None) -> Usuario | None:
    """The CLI's change of a usuario's role or activation, None when no such username.

    The operator's way back in (the API lets nobody change their own role or
    activation), under the API's rule: the last active admin stays one
    (UltimoAdmin). Through the ORM, so the cached access and figures follow.
    """
    usuario = db.session.scalar(select(Usuario).where(mismo_username(username.strip())))
    if usuario is None:
        return None
    cambios = {k: v for k, v in (("rol", rol), ("is_active", activo)) if v is not None}
    _conserva_un_admin(usuario, cambios)
    return _guardar(usuario, cambios)


def actualizar_perfil(usuario_id: int, cambios: dict[str, Any]) -> Usuario:
    return _guardar(get_usuario_or_404(usuario_id), cambios)


def crear_usuario(
    username: str,
    email: str,
    password: str,
    rol: str = "cliente",
    first_name: str = "",
    last_name: str = "",
) -> Usuario:
    """Create a usuario (CLI and tools); the caller has validated the input.

    The rule of every write path: email lower-cased, username NFKC-normalised
    (normalize_username) with its case as given.
    """
    usuario = Usuario(
        username=normalize_username(username.strip()),
        email=normalize_email(email),
        rol=rol,
        first_name=first_name,
        last_name=last_name,
        telefono="",
        direccion="",
    )
    usuario.set_password(password)
    db.session.add(usuario)
    db.session.commit()
    return usuario


def existe_usuario(username: str | None = None, email: str | None = None) -> bool:
    conditions = []
    if username is not None:
        conditions.append(mismo_username(username))
    if email is not None:
        conditions.append(db.func.lower(Usuario.email) == email.lower())
    if not conditions:
        return False
    return db.session.scalar(select(Usuario.id).where(or_(*conditions)).limit(1)) is not None
