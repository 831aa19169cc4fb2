"""X-Forwarded-For believed only from the reverse proxies named in TRUSTED_PROXIES.

Werkzeug's ProxyFix trusts the last N hops from *any* peer: a client talking
to the app directly could send `X-Forwarded-For: 127.0.0.1` and be taken for
loopback (reading `/metrics`, dodging the per-IP login limit). Here the header
counts only when the TCP peer is a configured proxy; the client is then the
rightmost address in the chain that is not itself a trusted proxy (the
leftmost entries are whatever the client chose to send, so they are never
read). `X-Forwarded-Proto`/`-Host` are taken from the nearest proxy, under the
same condition. From anyone else, every `X-Forwarded-*` header is dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from electro_isla.config import Network

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


def client_ip(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client address as a peer or a proxy writes it (`[::1]` too); an IPv4-mapped
    IPv6 address is the IPv4 one; None when it is no address."""
    try:
        address = ipaddress.ip_address(raw.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's address behind a trusted proxy."""

    def __init__(self, app: Callable[..., Any], proxies: Iterable[Network]) -> None:
        self.app = app
        self.proxies = list(proxies)

    def trusted(self, raw: str | None) -> bool:
        address = client_ip(raw or "")
        return address is not None and any(
            address.version == net.version and address in net for net in self.proxies
        )

    def client_address(self, peer: str, forwarded_for: str) -> str:
        """Walk the chain from the right, past trusted proxies, to the first other hop."""
        client = peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if client_ip(hop) is None:
                break  # garbage: stop at the last hop we could verify
            client = hop.strip("[]")
            if not self.trusted(hop):
                break
        return client

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        headers = {name: environ.pop(name, None) for name in FORWARDED_HEADERS}
        if self.proxies and self.trusted(peer):
            environ["electro_isla.proxy.peer"] = peer
            if headers["HTTP_X_FORWARDED_FOR"]:
                environ["REMOTE_ADDR"] = self.client_address(peer, headers["HTTP_X_FORWARDED_FOR"])
            proto = (headers["HTTP_X_FORWARDED_PROTO"] or "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
            host = (headers["HTTP_X_FORWARDED_HOST"] or "").split(",")[-1].strip()
            if host:
                environ["HTTP_HOST"] = host
            for name, value in headers.items():
                if value is not None:
                    environ[name] = value
        if environ.get("HTTP_HOST"):
            # Host names are case-insensitive; TRUSTED_HOSTS' check and the links are not.
            environ["HTTP_HOST"] = environ["HTTP_HOST"].lower()
        return self.app(environ, start_response)
