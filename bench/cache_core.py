"""Micro-benchmark: CPU per `cache_manager.get` HIT, in-process, without HTTP.

    redis-server --port 6399 --save '' --daemonize yes
    PYTHONPATH=<tree> .venv/bin/python bench/cache_core.py 6399 <label>

Run once with PYTHONPATH naming a base export (`git archive <commit> | tar -x -C dir`)
and once with this tree, against the same Redis: the HTTP bench (catalogue.py) on a
shared 2-core machine swings ±30 % per round; this isolates the cache's own cost.
Prints the median over 5 repetitions of 3000 HITs of a statistic and of a producto.
"""

import os
import sys
import tempfile
import time

from electro_isla import create_app
from electro_isla.config import TestConfig
from electro_isla.extensions import db

port, label = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
app = create_app(
    TestConfig,
    {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/t.db",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "CACHE_KEY_PREFIX": f"micro{os.getpid()}",
        "LOG_DIR": f"{tmp}/logs",
    },
)
with app.app_context():
    db.create_all()
from electro_isla.cache import cache_manager  # noqa: E402


def run(n: int, name: str, row: int | None) -> float:
    with app.test_request_context():
        kw = {"row": row} if row is not None else {}
        cache_manager.get(name, lambda: {"a": 1, "b": [1, 2, 3]}, **kw)
        started = time.process_time()
        for _ in range(n):
            cache_manager.get(name, lambda: {"a": 1}, **kw)
        return (time.process_time() - started) / n * 1e6


results: dict[str, list[float]] = {}
for _ in range(5):
    for name, row in (("estadisticas_productos", None), ("producto", 7)):
        results.setdefault(name, []).append(run(3000, name, row))
print(label, {k: round(sorted(v)[2], 1) for k, v in results.items()}, "CPU us per HIT")
