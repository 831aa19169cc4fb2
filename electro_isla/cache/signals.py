"""Blinker signals for cache events; logs and metrics subscribe to them.

Every signal is sent with `name` (the cached name) and `key` (the full key).
"""

from blinker import Namespace

_signals = Namespace()

cache_hit = _signals.signal("cache-hit")
cache_miss = _signals.signal("cache-miss")
cache_fetch = _signals.signal("cache-fetch")  # also carries `seconds` and `ttl`
cache_invalidate = _signals.signal("cache-invalidate")
cache_error = _signals.signal("cache-error")  # also carries `error`
cache_bypass = _signals.signal("cache-bypass")
