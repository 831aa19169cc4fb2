"""The real app (`wsgi:app`, configured from the environment) plus test-only extras.

Used by test_gunicorn.py only: a route that stays in flight inside PostgreSQL
for a given time (to SIGTERM the server while requests are being served) and
an `X-Worker-Pid` header (to prove requests really spread over the workers).
"""

from __future__ import annotations

import os

from flask import Response, request
from sqlalchemy import text

from electro_isla.extensions import db
from electro_isla.shared_store import shared_redis
from wsgi import app


@app.get("/__test__/slow")
def slow():  # noqa: ANN202
    seconds = min(float(request.args.get("seconds", "1")), 10.0)
    redis = shared_redis(app)
    redis.incr(os.environ["TEST_INFLIGHT_KEY"])  # "I am being served"
    db.session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    return {"pid": os.getpid(), "slept": seconds}


@app.after_request
def worker_pid(response: Response) -> Response:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
