"""What every response says to caches and browsers about itself.

A response that did not choose its own Cache-Control is not stored by a browser or
a proxy: `no-store`. The login and refresh bodies carry an access token (RFC 6749
§5.1 asks for exactly this), the rest carry a usuario's orders, address or the
staff's lists. The cached endpoints choose `private, no-cache` themselves (the
cache layer), so their conditional GETs still answer 304. `nosniff` keeps a
browser from reading a JSON body as anything else.
"""

from __future__ import annotations

from flask import Flask, Response


def register_headers(app: Flask) -> None:
    """Every response, the error envelopes and redirects included, passes here."""
    app.after_request(default_headers)


def default_headers(response: Response) -> Response:
    """`no-store` unless the view chose; `nosniff` always; no Content-Type on a 204,
    which has no body to describe (DRF drops it too)."""
    if response.status_code == 204:
        response.headers.pop("Content-Type", None)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
