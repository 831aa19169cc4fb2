"""Fixtures for the auth tests."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.auth.support import make_usuario


@pytest.fixture
def usuario_id(app: Flask) -> int:
    return make_usuario(app, username="ana", email="ana@example.test", rol="cliente")
