"""Cached GETs answered from a body and ETag rendered once, at fetch time.

A HIT through `@blp.response` dumps the cached data through the schema, renders
JSON and hashes it for the ETag on every request: most of a HIT's CPU. Here the
view renders exactly what that pipeline would (same schema, same JSON provider,
same ETag function) when the value is fetched; the cache stores the result and a
HIT only wraps the stored text in a Response. flask-smorest passes a Response
returned by the view straight through, so `@blp.response` stays for the OpenAPI
document and `@blp.etag` still sets the ETag header (from the stored tag).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from flask_smorest.etag import _get_etag_ctx
from marshmallow import Schema

# What `render` stores: {"etag": str, "body": str}, or {} for "no document" (a
# cached None would read as a miss every time).
Rendered = dict[str, str]


def renderer(
    blp: Blueprint, schema: Schema, found: Callable[[Any], bool] = lambda data: data is not None
) -> Callable[[Any], Rendered]:
    """A `render` for CacheManager.get: the body and ETag `@blp.response` + `@blp.etag` make."""

    def render(data: Any) -> Rendered:
        if not found(data):
            return {}
        dumped = schema.dump(data)
        body = jsonify(blp._prepare_response_content(dumped)).get_data(as_text=True)
        # No X-Pagination header here, so no extra data in the tag (as smorest does).
        return {"etag": blp._generate_etag(dumped), "body": body}

    return render


def respond(blp: Blueprint, rendered: Rendered) -> Response:
    """The stored body as a 200; 304 when If-None-Match has the stored ETag."""
    if blp._is_etag_enabled():
        etag = rendered["etag"]
        blp._check_not_modified(etag)  # raises NotModified (304)
        # `@blp.etag` puts this tag on the response instead of hashing a dump.
        _get_etag_ctx()["etag"] = etag
    return current_app.response_class(rendered["body"], mimetype=current_app.json.mimetype)
