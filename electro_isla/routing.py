"""URL matching: a path missing its trailing slash redirects whatever the method.

Werkzeug's strict_slashes redirect only fires when the slashed rule accepts the
request's method: POST /api/auth/login was a 308 to /api/auth/login/, but GET
/api/auth/login a 404, as if the resource did not exist. Here any method gets
the 308 when the slashed path exists; following it answers 405 with Allow
where that method is not served (as Django's APPEND_SLASH redirects first).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Flask, Response
from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, MapAdapter, RequestRedirect

# What werkzeug keeps unescaped in a redirect path (url.spec.whatwg.org path segment).
PATH_SAFE = "!$&'()*+,/:;=@"


class SlashRedirectAdapter(MapAdapter):
    def match(  # type: ignore[override]
        self,
        path_info: str | None = None,
        method: str | None = None,
        return_rule: bool = False,
        query_args: Any = None,
        websocket: bool | None = None,
    ) -> Any:
        try:
            return super().match(path_info, method, return_rule, query_args, websocket)
        except NotFound:
            path = self.path_info if path_info is None else path_info
            # allowed_methods matches again, with the slash: no recursion past it.
            if not path.endswith("/") and self.allowed_methods(f"{path}/"):
                args = self.query_args if query_args is None else query_args
                url = self.make_redirect_url(quote(f"/{path.lstrip('/')}/", safe=PATH_SAFE), args)
                raise RequestRedirect(url) from None
            raise


class SlashRedirectMap(Map):
    """A Map whose adapters redirect to the slashed path for every method."""

    def bind(self, *args: Any, **kwargs: Any) -> MapAdapter:
        adapter = super().bind(*args, **kwargs)
        adapter.__class__ = SlashRedirectAdapter
        return adapter

    def bind_to_environ(self, *args: Any, **kwargs: Any) -> MapAdapter:
        # werkzeug calls Map.bind(self, ...) here, past the override above.
        adapter = super().bind_to_environ(*args, **kwargs)
        adapter.__class__ = SlashRedirectAdapter
        return adapter


class App(Flask):
    url_map_class = SlashRedirectMap

    def make_default_options_response(self) -> Response:
        """OPTIONS answers JSON like every other response (Flask's is an empty text/html
        body): the methods the path serves, as in the Allow header beside it."""
        allowed = super().make_default_options_response().allow
        response = self.json.response({"allowed_methods": sorted(allowed)})
        response.allow.update(allowed)
        return response
