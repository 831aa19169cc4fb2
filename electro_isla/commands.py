"""Application CLI (`flask --app wsgi <command>`): users and demo data."""

from __future__ import annotations

from flask import Blueprint

app_cli = Blueprint("app_cli", __name__, cli_group=None)
