"""Answers rendered once: the JSON body, its ETag, If-None-Match and the 304.

A HIT through `@blp.response` would dump the cached data through the schema,
render JSON and hash it for the ETag on every request: most of a HIT's CPU.
Here the body and tag are rendered when the value is fetched (`renderer`), the
cache stores them, and a HIT only wraps the stored text in a Response
(`respond`). flask-smorest passes a Response returned by a view straight
through, so `@blp.response` stays for the OpenAPI document.

The tag is the SHA-1 of the document's JSON with sorted keys (`etag_of`): the
tag flask-smorest's `@blp.etag` gave, so clients' stored tags stay valid.
If-None-Match compares weakly (RFC 9110 13.1.2): `W/"<tag>"` is a 304 too, and
the 304 repeats the strong tag a 200 would carry (RFC 9110 15.4.5).

A page's next/previous links depend on the host the client called, so they are
never stored: the results text, joined from per-row fragments (cache/composed.py),
is spliced between per-request links, in the compact form the JSON provider
answers with outside debug mode, and the tag is hashed from the same splice in
the sorted-keys form `etag_of` hashes.

`conditional(blp)` documents a view's 304; `ConditionalGetPlugin` then adds the
If-None-Match parameter and the ETag header to that operation's document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from apispec import BasePlugin
from flask import Response, current_app, json, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema

# What `render` stores: {"etag": str, "body": str}, or {} for "no document" (a
# cached None would read as a miss every time).
Rendered = dict[str, str]

CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})


def etag_of(document: Any) -> str:
    """The document's tag: SHA-1 of its JSON with sorted keys."""
    return _tag(json.dumps(document, sort_keys=True))


def _tag(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 (a validator, not a secret)


def render(document: Any) -> Rendered:
    """The body `jsonify(document)` sends, and its tag."""
    return {"etag": etag_of(document), "body": jsonify(document).get_data(as_text=True)}


def renderer(
    schema: Schema, found: Callable[[Any], bool] = lambda data: data is not None
) -> Callable[[Any], Rendered]:
    """A `render` for CacheManager.get: the schema's dump of the data, rendered."""

    def render_found(data: Any) -> Rendered:
        return render(schema.dump(data)) if found(data) else {}

    return render_found


def respond(rendered: Rendered) -> Response:
    """The stored body as a 200 with its ETag; 304 when If-None-Match names the tag."""
    return _answer(rendered["body"], rendered["etag"])


def respond_document(document: Any) -> Response:
    """An already dumped document, rendered now (debug mode, uncached answers)."""
    return respond(render(document))


def _answer(body: str, etag: str) -> Response:
    if request.method in CONDITIONAL_METHODS and request.if_none_match.contains_weak(etag):
        answer = Response(status=304)
    else:
        answer = current_app.response_class(body, mimetype=current_app.json.mimetype)
    answer.set_etag(etag)
    return answer


def row_renderer(item_schema: Schema) -> Callable[[Any], dict[str, str]]:
    """A fragment renderer for composed pages (cache/composed.py): one item, both forms.

    Joined with "," (compact) and ", " (sorted keys, default separators) inside
    brackets, the fragments are exactly the JSON of the list of those items, as
    the response renders it and as `etag_of` hashes it.
    """

    def render_row(data: Any) -> dict[str, str]:
        item = item_schema.dump(data)
        return {
            "b": current_app.json.dumps(item, **_compact()),
            "t": json.dumps(item, sort_keys=True),
        }

    return render_row


def _compact() -> dict[str, Any]:
    """What DefaultJSONProvider.response passes to dumps() outside debug mode."""
    return {"indent": None, "separators": (",", ":")}


def respond_page(rendered: dict[str, Any], links: dict[str, Any]) -> Response:
    """`{count,next,previous,results}` exactly as `respond_document` would answer it."""
    provider = current_app.json
    count = int(rendered["count"])
    nxt, prev = provider.dumps(links["next"]), provider.dumps(links["previous"])
    tagged = (
        f'{{"count": {count}, "next": {nxt}, "previous": {prev}, "results": {rendered["tagged"]}}}'
    )
    body = f'{{"count":{count},"next":{nxt},"previous":{prev},"results":{rendered["body"]}}}\n'
    return _answer(body, _tag(tagged))


def splice_ok() -> bool:
    """Splicing assumes the compact, non-debug rendering; otherwise `respond_document`."""
    provider = current_app.json
    compact = provider.compact
    return bool(compact) or (compact is None and not current_app.debug)


def conditional(blp: Blueprint) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document a view answered by `respond*`: its 304 (and, through the plugin,
    If-None-Match and the ETag header)."""
    return blp.alt_response(304, response="NOT_MODIFIED")


class ConditionalGetPlugin(BasePlugin):
    """apispec plugin: an operation documenting a 304 takes If-None-Match and tags its 2xx.

    `blp.doc(parameters=...)` would replace the query parameters `@blp.arguments`
    documents, so the parameter is added here, once the operation is assembled.
    IF_NONE_MATCH and ETAG are the components flask-smorest registers.
    """

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.get("responses", {})
            if 304 not in responses and "304" not in responses:
                continue
            operation.setdefault("parameters", []).append("IF_NONE_MATCH")
            for code, response in responses.items():
                if str(code).startswith("2") and isinstance(response, dict):
                    response.setdefault("headers", {})["ETag"] = "ETAG"
