"""URL matching: a path missing its trailing slash redirects whatever the method.

Werkzeug's strict_slashes redirect only fires when the slashed rule accepts the
request's method: POST /api/auth/login was a 308 to /api/auth/login/, but GET
/api/auth/login a 404, as if the resource did not exist. Here any method gets
the 308 when the slashed path exists; following it answers 405 with Allow
where that method is not served (as Django's APPEND_SLASH redirects first).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Flask, Request, Response
from werkzeug.exceptions import NotFound, SecurityError
from werkzeug.routing import Map, MapAdapter, RequestRedirect

# What werkzeug keeps unescaped in a redirect path (url.spec.whatwg.org path segment).
PATH_SAFE = "!$&'()*+,/:;=@"
# A Host header as Django's request.get_host() accepts it (lower-cased by
# electro_isla/proxy.py): a name or an address, or a bracketed IPv6 one, and a port.
# As in Django, no `_` (werkzeug could not build a link naming it either).
HOST = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]{1,5}))?")


def well_formed_host(host: str | None) -> bool:
    """True for a Host the links and redirects can name; None (HTTP/1.0 sent none:
    SERVER_NAME stands in) too. `a b`, an empty value or port 99999 are not."""
    if host is None:
        return True
    found = HOST.fullmatch(host)
    return found is not None and (found[2] is None or 0 < int(found[2]) <= 65535)


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

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """A malformed Host is a 400, as Django answers one whatever ALLOWED_HOSTS says:
        it would make every absolute link and redirect `http:///…`. Raised here, it
        becomes the request's routing error, answered in the envelope."""
        if request is not None and not well_formed_host(request.environ.get("HTTP_HOST")):
            raise SecurityError("Invalid Host header.")
        return super().create_url_adapter(request)

    def make_default_options_response(self) -> Response:
        """OPTIONS answers JSON like every other response (Flask's is an empty text/html
        body): the methods the path serves, as in the Allow header beside it."""
        allowed = super().make_default_options_response().allow
        response = self.json.response({"allowed_methods": sorted(allowed)})
        response.allow.update(allowed)
        return response
