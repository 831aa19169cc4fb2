"""Who is calling, as the services see it: a snapshot of the usuario's current access.

Its own module so services can take an Actor without importing the request
machinery of auth/permissions.py, which itself reads usuarios/service.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from electro_isla.usuarios.models import STAFF_ROLES


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
