"""A Redis client built on first use, and built again until it works.

A cluster client connects when it is constructed (to learn the slots); a
standalone or Sentinel one on its first command. Either way, a worker that
starts while Redis is down must not be stuck without it: `LazyClient` stands in
for the real client, builds it on the first command, and when building fails
raises the error to its caller (whose breaker then keeps requests away) and
tries again on the next command the breaker lets through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import Encoder


class LazyClient:
    """Proxies every attribute to the real client, building it when first needed."""

    def __init__(self, build: Callable[[], Redis | RedisCluster]) -> None:
        self._build = build
        self._client: Redis | RedisCluster | None = None
        self._guard = threading.Lock()

    @property
    def built(self) -> bool:
        """True once the real client exists (a cluster client: once it reached a node)."""
        return self._client is not None

    def resolve(self) -> Redis | RedisCluster:
        """The real client, built now if need be; raises what building raised."""
        client = self._client
        if client is not None:
            return client
        with self._guard:
            if self._client is None:
                self._client = self._build()
            return self._client

    def get_encoder(self) -> Encoder:
        """Scripts hash their text with it; UTF-8 like every client the layer builds."""
        return Encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False)

    def register_script(self, script: str) -> Script:
        """A script bound to this proxy: registering it connects nowhere."""
        return Script(self, script)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)
