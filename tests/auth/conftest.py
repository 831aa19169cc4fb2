"""Fixtures for the auth tests."""

from __future__ import annotations

from functools import partial

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash

from electro_isla.auth import service
from tests.auth.support import make_usuario


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap hashes in these tests (as Django's test settings do): they log in hundreds of
    times, and scrypt costs a tenth of a second each. Verification still runs for real."""
    cheap = partial(generate_password_hash, method="pbkdf2:sha256:1000")
    monkeypatch.setattr("electro_isla.usuarios.models.generate_password_hash", cheap)
    monkeypatch.setattr(service, "_dummy_hash", lambda: cheap("dummy-password"))


@pytest.fixture
def usuario_id(app: Flask) -> int:
    return make_usuario(app, username="ana", email="ana@example.test", rol="cliente")
