"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`."""

import sys

from electro_isla import create_app
from electro_isla.config import Refused
from electro_isla.config_values import Misconfigured

try:
    app = create_app()
except (Misconfigured, Refused) as exc:
    # A setting that cannot work (create_app names it): one line, not a 31-line traceback
    # from every worker (an operator's probe). Exit 3 is gunicorn's "worker failed to
    # boot": the master stops instead of starting the worker again.
    print(f"electro_isla cannot start: {exc}", file=sys.stderr)  # noqa: T201
    raise SystemExit(3) from None
