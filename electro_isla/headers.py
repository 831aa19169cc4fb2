"""What every response says to caches and browsers about itself.

A response that did not choose its own Cache-Control is not stored by a browser or
a proxy: `no-store`. The login and refresh bodies carry an access token (RFC 6749
§5.1 asks for exactly this), the rest carry a usuario's orders, address or the
staff's lists. A response with an ETag keeps being revalidated instead
(`private, no-cache`, what the cache layer sends), so conditional GETs still
answer 304. `nosniff` keeps a browser from reading a JSON body as anything else.
"""

from __future__ import annotations

from flask import Flask, Response

NOT_STORED = "no-store"
REVALIDATED = "private, no-cache"


def register_headers(app: Flask) -> None:
    app.after_request(default_headers)


def default_headers(response: Response) -> Response:
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = (
            REVALIDATED if "ETag" in response.headers else NOT_STORED
        )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
