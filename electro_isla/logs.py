"""Application logging (request ids, optional JSON) — wired by `register_logging`."""

from __future__ import annotations

from flask import Flask


def register_logging(app: Flask) -> None:
    """Placeholder until the logging work lands: keeps Flask's default handler."""
