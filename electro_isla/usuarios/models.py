from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from electro_isla.db_types import UTCDateTime, utcnow
from electro_isla.extensions import db

ROLES = ("admin", "trabajador", "mensajero", "cliente")
STAFF_ROLES = frozenset({"admin", "trabajador"})


def normalize_username(username: str) -> str:
    """The one form rule for usernames (Django's): NFKC-normalised, so the Kelvin
    sign is a K and a full-width A an A; the case is kept as typed."""
    return unicodedata.normalize("NFKC", username)


def normalize_email(email: str) -> str:
    """The one case rule for emails: stored trimmed and lower-cased."""
    return email.strip().lower()


class Usuario(db.Model):
    """A usuario. Emails are stored lower-cased; usernames NFKC-normalised in the case
    typed, but two that differ only in case cannot both exist (unique indexes on
    lower(), migration 0003; SQLite's lower() folds only ASCII letters)."""

    __tablename__ = "usuarios"
    __table_args__ = (
        CheckConstraint("rol IN ('admin', 'trabajador', 'mensajero', 'cliente')", name="rol"),
        Index("ix_usuarios_date_joined", "date_joined"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    rol: Mapped[str] = mapped_column(String(20), default="cliente")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    date_joined: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    telefono: Mapped[str] = mapped_column(String(30), default="")
    direccion: Mapped[str] = mapped_column(Text, default="")

    @property
    def nombre(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.username

    @property
    def is_staff(self) -> bool:
        return self.rol in STAFF_ROLES

    def set_password(self, password: str) -> None:
        """Hash `password`; one with a NUL is refused (see check_password)."""
        if "\x00" in password:
            raise ValueError("A password cannot contain NUL characters.")
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Never true for a password with a NUL.

        PBKDF2/scrypt use it as an HMAC key, which is zero-padded: "secret\x00"
        would match the hash of "secret" (and the other way round).
        """
        return "\x00" not in password and check_password_hash(self.password_hash, password)


# One account per name whatever the case: "Ana" and "ana" cannot both register,
# and a case-insensitive login finds exactly one usuario.
Index("uq_usuarios_lower_username", func.lower(Usuario.username), unique=True)
Index("uq_usuarios_lower_email", func.lower(Usuario.email), unique=True)


def mismo_username(username: str) -> ColumnElement[bool]:
    """The usuario named `username` in any case: the comparison that index serves.

    Both sides are lowered by the database, as the unique index is: Python's
    lower() folds letters SQLite's does not (Ñ), and "Ñandu" could not log in.
    """
    return func.lower(Usuario.username) == func.lower(normalize_username(username))
