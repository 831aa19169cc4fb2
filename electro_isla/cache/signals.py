"""Blinker signals for cache events; logs and metrics subscribe to them.

Every signal is sent with `name` (the cached name) and `key` (the full key),
except `generations_bumped`.
"""

from blinker import Namespace

_signals = Namespace()

cache_hit = _signals.signal("cache-hit")
cache_miss = _signals.signal("cache-miss")
cache_fetch = _signals.signal("cache-fetch")  # also carries `seconds` and `ttl`
cache_invalidate = _signals.signal("cache-invalidate")
cache_error = _signals.signal("cache-error")  # also carries `error`
cache_bypass = _signals.signal("cache-bypass")
# Sent once per applied batch of bumps (post-commit, or a replay of bumps another process could
# not apply) with `names` (the cached names) and `keys` (the generation keys) bumped:
# the one seam live statistics (electro_isla/live) hang on.
generations_bumped = _signals.signal("generations-bumped")
