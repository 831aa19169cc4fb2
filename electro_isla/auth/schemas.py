"""Auth request and response bodies.

Request schemas ignore unknown fields (as Django REST Framework does), so a
client sending `rol` or a password confirmation is not refused — and `rol` is
never read: every registration is a `cliente`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from electro_isla.fields import storable_text, text
from electro_isla.usuarios.models import normalize_username
from electro_isla.usuarios.schemas import UsuarioSchema

# No "@": a username can never be mistaken for someone else's email at login.
USERNAME_PATTERN = r"^[\w.+-]+\Z"  # \Z: "$" would let a trailing newline in
# What the OpenAPI document publishes: a looser form every regex dialect reads alike
# (JSON Schema's ECMA-262 with or without its `u` flag, Python's `re` of Python
# clients): no ASCII other than letters, digits and . + - _, anything beyond ASCII.
# The exact rule (Unicode letters and digits, after NFKC) is said in the description;
# Python's `\Z`, `\w` and ECMA's `\p{L}` are each unreadable to one of them.
USERNAME_JSON_PATTERN = r"^[^\x00-\x2a\x2c\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]+$"
USERNAME_RULE = "Letters, digits and . + - _ only."


class Username(fields.String):
    """A new username, normalised before it is validated (NFKC may change its length)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return normalize_username(value)


class RegisterSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    username = Username(
        required=True,
        validate=[
            validate.Length(min=1, max=150),
            validate.Regexp(USERNAME_PATTERN, error=USERNAME_RULE),
        ],
        metadata={
            "pattern": USERNAME_JSON_PATTERN,
            "description": "Letters of any script, digits and . + - _ (checked after NFKC "
            f'normalisation; else 422 "{USERNAME_RULE}"). The pattern is the part of the '
            "rule every regex dialect reads alike.",
        },
    )
    email = fields.Email(
        required=True,
        validate=[validate.Length(max=254), storable_text],
        metadata={
            "description": "An address whose domain ends in a part of 2+ characters",
            # What the validator adds to `format: email` (no NUL either, as all text).
            "pattern": "^[^\\u0000]*(@localhost|\\.[A-Za-z0-9-]{2,}\\.?)$",
        },
    )
    # NUL refused like in every text field, and more so here: the hash's HMAC pads
    # its key with zeros, so "secret\x00" and "secret" would be the same password.
    password = fields.String(
        required=True, load_only=True, validate=[validate.Length(min=8, max=128), storable_text]
    )
    first_name = text(150, load_default="")
    last_name = text(150, load_default="")

    @validates("password")
    def password_not_blank(self, value: str, **_: Any) -> None:
        """Eight spaces were a password (DRF trims a CharField to blank and refuses it)."""
        if not value.strip():
            raise ValidationError("This field cannot be blank.")


class LoginSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    username = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=254), storable_text],
        metadata={"description": "username or email"},
    )
    password = fields.String(
        required=True, load_only=True, validate=[validate.Length(min=1, max=1024), storable_text]
    )


class UsuarioAuthSchema(Schema):
    """Who is logged in, as login and /api/auth/me/ show it."""

    id = fields.Integer()
    username = fields.String()
    email = fields.String()
    nombre = fields.String()
    rol = fields.String()


class RegisterResponseSchema(Schema):
    # The contract's Usuario, as /api/perfil/ and /api/admin/users/ show it (a DRF
    # client's probe: register's lacked telefono and direccion).
    user = fields.Nested(UsuarioSchema)
    message = fields.String()


class LoginResponseSchema(Schema):
    accessToken = fields.String()  # noqa: N815  (the contract's key)
    user = fields.Nested(UsuarioAuthSchema)
    message = fields.String()


class RefreshResponseSchema(Schema):
    accessToken = fields.String()  # noqa: N815


class MessageSchema(Schema):
    message = fields.String()


class LoginBlockedSchema(Schema):
    """429: the error envelope plus the original frontend's keys."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    error = fields.String()
    bloqueado = fields.Boolean()
    tiempo_restante = fields.Integer(metadata={"description": "seconds until a retry may work"})
    mensaje = fields.String()
