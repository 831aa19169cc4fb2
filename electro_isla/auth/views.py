"""/api/auth/: register, login, refresh, logout, and who am I."""

from __future__ import annotations

from typing import Any

from flask import Response, after_this_request, current_app, g, jsonify, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from electro_isla.auth import service
from electro_isla.auth import tokens as _tokens  # noqa: F401  (installs the JWT callbacks)
from electro_isla.auth.permissions import current_actor, login_required
from electro_isla.auth.ratelimit import (
    Block,
    account_key,
    client_key,
    login_limiter,
    register_limiter,
)
from electro_isla.auth.schemas import (
    LoginBlockedSchema,
    LoginResponseSchema,
    LoginSchema,
    MessageSchema,
    RefreshResponseSchema,
    RegisterResponseSchema,
    RegisterSchema,
    UsuarioAuthSchema,
)
from electro_isla.blueprint import Blueprint
from electro_isla.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")

REFRESH_COOKIE = "refreshToken"
REFRESH_COOKIE_PATH = "/api/auth/"
BAD_CREDENTIALS = "Invalid username or password."
BEARER = [{"bearerAuth": []}]
REFRESH_COOKIE_DOC = [
    {"in": "cookie", "name": REFRESH_COOKIE, "required": False, "schema": {"type": "string"}}
]


def _refresh_cookie_args() -> dict[str, Any]:
    config = current_app.config
    return {
        "path": REFRESH_COOKIE_PATH,
        "httponly": True,
        "samesite": "Lax",
        "secure": bool(config.get("REFRESH_COOKIE_SECURE", config["ENV_NAME"] == "production")),
    }


def _set_refresh_cookie(raw: str) -> None:
    max_age = int(current_app.config["REFRESH_TOKEN_EXPIRES"].total_seconds())

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(REFRESH_COOKIE, raw, max_age=max_age, **_refresh_cookie_args())
        return response


def _clear_refresh_cookie() -> None:
    @after_this_request
    def clear_cookie(response: Response) -> Response:
        response.delete_cookie(REFRESH_COOKIE, **_refresh_cookie_args())
        return response


def _blocked(block: Block) -> HTTPException:
    """429 with the contract's body; built here because it carries extra keys."""
    body = jsonify(
        code=429,
        status="Too Many Requests",
        message=f"Too many failed login attempts; try again in {block.seconds} s.",
        error="Demasiados intentos fallidos",
        bloqueado=True,
        tiempo_restante=block.seconds,
        mensaje=f"Cuenta bloqueada temporalmente. Intenta de nuevo en {block.seconds} segundos.",
    )
    body.status_code = 429
    body.headers["Retry-After"] = str(block.seconds)
    return HTTPException(response=body)


def _usuario_auth(usuario: Any) -> dict[str, Any]:
    return {
        "id": usuario.id,
        "username": usuario.username,
        "email": usuario.email,
        "nombre": usuario.nombre,
        "rol": usuario.rol,
    }


@blp.route("/register/")
class Register(MethodView):
    @blp.arguments(RegisterSchema)
    @blp.response(201, RegisterResponseSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(
        429,
        schema="Error",
        description="Too many accounts registered from this address (REGISTER_MAX_PER_IP)",
        headers={"Retry-After": {"schema": {"type": "integer"}}},
    )
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an account (always rol `cliente`); at most REGISTER_MAX_PER_IP per window"""
        limiter = register_limiter()
        taken = limiter.take([limiter.key("ip", client_key(request.remote_addr))])
        if isinstance(taken, Block):
            abort(
                429,
                message=f"Too many accounts registered from this address; "
                f"try again in {taken.seconds} s.",
                headers={"Retry-After": str(taken.seconds)},
            )
        try:
            usuario = service.register_usuario(data)
        except service.DuplicateUsuario as exc:
            abort(409, message=f"A usuario with this {exc.field} already exists.")
        return {"user": usuario, "message": "Usuario registrado correctamente."}


@blp.route("/login/")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(
        429, schema=LoginBlockedSchema, headers={"Retry-After": {"schema": {"type": "integer"}}}
    )
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Log in with username or email; sets the HttpOnly refreshToken cookie"""
        usuario = service.find_for_login(data["username"])
        account = account_key(data["username"], usuario.id if usuario else None)
        ip = client_key(request.remote_addr)
        limiter = login_limiter()
        # Reserved before the hash, atomically: parallel guesses cannot all get checked.
        attempt = limiter.reserve(account, ip)
        if isinstance(attempt, Block):
            raise _blocked(attempt)
        if not service.credentials_valid(usuario, data["password"]):
            abort(401, message=BAD_CREDENTIALS)  # the reserved places count the failure
        limiter.succeeded(attempt)
        refresh = service.issue_refresh_token(usuario.id)
        access = service.issue_access_token(usuario, refresh)
        db.session.commit()
        _set_refresh_cookie(refresh)
        return {"accessToken": access, "user": _usuario_auth(usuario), "message": "Login exitoso."}


@blp.route("/refresh/")
class Refresh(MethodView):
    @blp.response(200, RefreshResponseSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.doc(parameters=REFRESH_COOKIE_DOC)
    def post(self) -> dict[str, Any]:
        """Trade the refreshToken cookie for a new access token and a new cookie"""
        try:
            usuario, refresh = service.rotate_refresh_token(request.cookies.get(REFRESH_COOKIE))
        except service.RefreshRejected:
            _clear_refresh_cookie()
            abort(401, message="The refresh token is invalid, expired or already used.")
        access = service.issue_access_token(usuario, refresh)
        _set_refresh_cookie(refresh)
        return {"accessToken": access}


@blp.route("/logout/")
class Logout(MethodView):
    @login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.doc(security=BEARER)
    def post(self) -> dict[str, Any]:
        """Revoke this access token and every refresh token of the caller"""
        service.logout(current_actor().id, get_jwt())
        _clear_refresh_cookie()
        return {"message": "Sesión cerrada."}


@blp.route("/me/")
class Me(MethodView):
    @login_required
    @blp.response(200, UsuarioAuthSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The caller, from current data (costs no SQL on a cache hit)"""
        return g.acceso
