"""gunicorn entry of bench/outbox.py: this tree's app with its outbox rows turned off.

The writer still applies its bumps after COMMIT; it only records no row before
it (and so deletes none after): the cost the outbox adds, and nothing else.
Never served outside that benchmark.
"""

from electro_isla.cache.outbox import Outbox

# Not recorded: the effects come back as given (no row, so no mark and no delete).
Outbox.record = lambda self, connection, effects: sorted(effects)  # type: ignore[method-assign]

from wsgi import app  # noqa: E402  (the app is built after the patch)

__all__ = ["app"]
