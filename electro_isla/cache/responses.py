"""Cached GETs answered from a body and ETag rendered once, at fetch time.

A HIT through `@blp.response` dumps the cached data through the schema, renders
JSON and hashes it for the ETag on every request: most of a HIT's CPU. Here the
view renders exactly what that pipeline would (same schema, same JSON provider,
same ETag function) when the value is fetched; the cache stores the result and a
HIT only wraps the stored text in a Response. flask-smorest passes a Response
returned by the view straight through, so `@blp.response` stays for the OpenAPI
document and `@blp.etag` still sets the ETag header (from the stored tag).

A page's next/previous links depend on the host the client called, so they are
never stored: the results text, joined from per-row fragments (cache/composed.py),
is spliced between per-request links, in the compact form the JSON provider
answers with outside debug mode, and the ETag is hashed from the same splice in
the form smorest hashes (sorted keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, json, jsonify
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


def row_renderer(item_schema: Schema) -> Callable[[Any], dict[str, str]]:
    """A fragment renderer for composed pages (cache/composed.py): one item, both forms.

    Joined with "," (compact) and ", " (sorted keys, default separators) inside
    brackets, the fragments are exactly the JSON of the list of those items, as
    the response renders it and as smorest hashes it for the ETag.
    """

    def render(data: Any) -> dict[str, str]:
        item = item_schema.dump(data)
        return {
            "b": current_app.json.dumps(item, **_compact()),
            "t": json.dumps(item, sort_keys=True),
        }

    return render


def _compact() -> dict[str, Any]:
    """What DefaultJSONProvider.response passes to dumps() outside debug mode."""
    return {"indent": None, "separators": (",", ":")}


def respond_page(blp: Blueprint, rendered: dict[str, Any], links: dict[str, Any]) -> Response:
    """`{count,next,previous,results}` exactly as `@blp.response` + `@blp.etag` answer it."""
    provider = current_app.json
    count = int(rendered["count"])
    nxt, prev = provider.dumps(links["next"]), provider.dumps(links["previous"])
    if blp._is_etag_enabled():
        tagged = (
            f'{{"count": {count}, "next": {nxt}, "previous": {prev}, '
            f'"results": {rendered["tagged"]}}}'
        )
        etag = hashlib.sha1(tagged.encode()).hexdigest()  # noqa: S324 (smorest's tag)
        blp._check_not_modified(etag)
        _get_etag_ctx()["etag"] = etag
    body = f'{{"count":{count},"next":{nxt},"previous":{prev},"results":{rendered["body"]}}}\n'
    return current_app.response_class(body, mimetype=provider.mimetype)


def respond_document(blp: Blueprint, document: dict[str, Any]) -> Response:
    """An already dumped document as `@blp.response` + `@blp.etag` answer it (debug mode)."""
    if blp._is_etag_enabled():
        etag = blp._generate_etag(document)
        blp._check_not_modified(etag)
        _get_etag_ctx()["etag"] = etag
    return jsonify(blp._prepare_response_content(document))


def splice_ok() -> bool:
    """Splicing assumes the compact, non-debug rendering; otherwise use smorest's path."""
    provider = current_app.json
    compact = provider.compact
    return bool(compact) or (compact is None and not current_app.debug)
