"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every setting can be changed from the environment (names below), so the same
file serves a laptop, a container and a VM. Why the defaults:

- gthread workers (processes x threads): the API waits on PostgreSQL and
  Redis most of the time, so threads overlap that waiting cheaply, and
  processes use the cores. Workers default to 2 x cores + 1, capped at 8:
  each worker holds its own database pool (ProdConfig: 5 + 5 overflow, more
  than the 4 threads, so no thread waits for a connection), and 8 workers x
  4 threads stay far below PostgreSQL's default 100 connections. The cores
  are the ones this process may run on (a container's CPU set), not the
  host's. Set WEB_CONCURRENCY when a CPU quota says otherwise.
- timeout 30 s: longer than the slowest cold statistics query, short enough
  that a stuck worker is replaced quickly. graceful_timeout 30 s: in-flight
  requests finish on SIGTERM (docker stop, a rolling deploy); compose gives
  the container 40 s before SIGKILL.
- max_requests 1000 with jitter 100: workers are recycled now and then so
  a slow leak cannot grow forever, and the jitter keeps them from all
  restarting at the same moment.
- keepalive 5 s: enough for a proxy or a client to reuse its connection.

Prometheus multiprocess mode: workers write their samples under
PROMETHEUS_MULTIPROC_DIR and `/metrics` sums them. When unset, a fresh
private directory is created here, in the master, before any worker forks
(prometheus-client picks its storage at import, so this must come first).
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import shutil
import tempfile

from gunicorn import util
from gunicorn.glogging import Logger

# -- Prometheus: before anything imports prometheus_client ---------------------------------
_PROM_DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"
# Markers in the master's environment: a configuration reload (SIGHUP) runs this
# file again and must neither wipe live counters nor forget who owns the directory.
_PROM_READY_VAR = "ELECTRO_ISLA_PROMETHEUS_DIR_READY"
_PROM_OWNED_VAR = "ELECTRO_ISLA_PROMETHEUS_DIR_OWNED"

if not os.environ.get(_PROM_DIR_VAR):
    os.environ[_PROM_DIR_VAR] = tempfile.mkdtemp(prefix="electro-isla-metrics-")
    os.environ[_PROM_OWNED_VAR] = os.environ[_PROM_DIR_VAR]

    def _remove_unused_dir(
        path: str = os.environ[_PROM_DIR_VAR], master: int = os.getpid()
    ) -> None:
        """A start refused below (a setting that cannot work) never reaches on_exit: it left
        an empty directory each time (an operator's probe). Only in this process, never in
        a forked worker, and only while the directory is still empty."""
        if os.getpid() == master and os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)

    atexit.register(_remove_unused_dir)
_prom_dir = os.environ[_PROM_DIR_VAR]
os.makedirs(_prom_dir, exist_ok=True)
if os.environ.get(_PROM_READY_VAR) != _prom_dir:
    # A given directory may hold the files of a previous run: its counters and
    # dead workers' gauges would be added to this run's.
    for stale in glob.glob(os.path.join(_prom_dir, "*.db")):
        os.unlink(stale)
    os.environ[_PROM_READY_VAR] = _prom_dir


def _int_env(name: str, default: int, least: int = 0) -> int:
    """A whole-number setting; one that is not stops gunicorn naming it (it was int()'s
    bare "invalid literal" under "Failed to read config file")."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}: {raw!r} is not a whole number") from None
    if value < least:
        raise SystemExit(f"{name} must be at least {least}, not {value}")
    return value


def _choice_env(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case); another stops gunicorn naming them (gunicorn took
    GUNICORN_LOG_LEVEL=loud and logged at info, silently)."""
    raw = os.environ.get(name, "").strip().lower() or default
    if raw not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(2 * cores + 1, 8)


# -- Server socket -----------------------------------------------------------------------------
bind = os.environ.get("BIND") or f"0.0.0.0:{_int_env('PORT', 8000)}"  # noqa: S104  (container)
backlog = 2048

# -- Workers -----------------------------------------------------------------------------------
workers = _int_env("WEB_CONCURRENCY", _default_workers(), least=1)  # 0: no worker at all
# Live statistics hold requests and streams (one thread each while they last): each
# worker gets LIVE_MAX_WAITERS threads on top of GUNICORN_THREADS, and the app never
# lets live clients take more than LIVE_MAX_WAITERS, so ordinary requests always find
# one of their GUNICORN_THREADS free (README, "Live statistics: the worker model").
live_max_waiters = _int_env("LIVE_MAX_WAITERS", 100)
ordinary_threads = _int_env("GUNICORN_THREADS", 4, least=1)
threads = ordinary_threads + live_max_waiters
# The app lets this many ordinary requests run at once, as before the reserve.
os.environ["LIVE_ORDINARY_THREADS"] = str(ordinary_threads)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int_env("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int_env("GUNICORN_KEEPALIVE", 5)
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int_env("GUNICORN_MAX_REQUESTS_JITTER", 100)
# Each worker imports the app itself: no database or Redis connection can be
# inherited across fork, and a recycled worker starts from a clean import.
preload_app = False
# gunicorn >= 24 opens a control socket under $HOME; signals do the same job, and a
# shared path would clash between two servers on one host (or fail for a user
# without a writable home, like the container's).
control_socket_disable = True
# X-Forwarded-* are the app's to read, from TRUSTED_PROXIES only (electro_isla/proxy.py).
# gunicorn's defaults believe X-Forwarded-Proto/-Ssl/-Protocol from 127.0.0.1 and set the
# scheme before the app runs, so a local client could turn every absolute URL into https.
# (Also over a UNIX socket, whose peers gunicorn trusts whatever forwarded_allow_ips says.)
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""
# Heartbeat files on tmpfs: a slow disk (overlayfs) must not make workers look stuck.
_SHM = "/dev/shm"  # noqa: S108  (gunicorn's documented choice; files are private per worker)
if os.path.isdir(_SHM):
    worker_tmp_dir = _SHM

# -- Logging -----------------------------------------------------------------------------------
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = _choice_env(
    "GUNICORN_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
)
# Request id (echoed by the app in X-Request-ID) and duration in ms on every line.
access_log_format = (
    '%(h)s request_id=%({x-request-id}o)s "%(r)s" %(s)s %(b)s duration_ms=%(M)s "%(a)s"'
)


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:  # noqa: ANN001
    """gunicorn's own refusals (a request line or headers too large, a malformed request)
    in the contract's envelope: gunicorn wrote an HTML page (API.md: never HTML)."""
    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body.encode())


# -- Hooks -------------------------------------------------------------------------------------
class Logs(Logger):
    """gunicorn's logger with the app's filters and format, from its first line: set up in
    on_starting, "Starting gunicorn" (logged before that hook) stayed plain text under
    LOG_FORMAT=json. Secrets are masked in gunicorn's own lines too (a token in a query
    string, say), and they carry the request id."""

    def setup(self, cfg) -> None:  # noqa: ANN001
        super().setup(cfg)  # again on a reload (HUP): the handlers are new ones
        from electro_isla.logs import RedactingFilter, RequestIdFilter, make_formatter

        json_lines = os.environ.get("LOG_FORMAT", "text").strip().lower() == "json"
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(f, RequestIdFilter) for f in logger.filters):
                # First: it reads the line's atoms, which the redacting filter flattens.
                logger.filters.insert(0, RequestIdFilter())
            if not any(isinstance(f, RedactingFilter) for f in logger.filters):
                logger.addFilter(RedactingFilter())
            if json_lines:
                for handler in logger.handlers:
                    handler.setFormatter(make_formatter("json"))


logger_class = Logs


def on_starting(server) -> None:  # noqa: ANN001
    """Hand the workers what they need from the master before it forks them."""
    util.write_error = write_json_error  # the workers (forked from here) call it by name
    # The app refuses several workers without a shared store (electro_isla/config.py):
    # tell it the effective count, whether it came from here, -w or GUNICORN_CMD_ARGS.
    os.environ["WEB_CONCURRENCY"] = str(server.cfg.workers)
    # Import now, with PROMETHEUS_MULTIPROC_DIR already set: a first import inside
    # child_exit during shutdown can meet a half-imported module.
    import prometheus_client.multiprocess  # noqa: F401

    import electro_isla.metrics_files  # noqa: F401

    server.log.info("prometheus multiprocess dir: %s", _prom_dir)


def nworkers_changed(server, new_value: int, old_value: int | None) -> None:  # noqa: ANN001
    """`kill -TTIN` past what the app allows: production refuses several workers without a
    shared store when it starts (electro_isla/config.py), and a TTIN added one anyway (an
    operator's probe: a logged-out token then worked on the other worker 10 times)."""
    if old_value is None:  # gunicorn's own first setting, before on_starting
        return
    from electro_isla.config import ProdConfig, config_class_from_env, shared_store_problem

    try:  # as the app decides it (APP_ENV or FLASK_ENV, any case, spaces)
        production = config_class_from_env() is ProdConfig
    except ValueError:  # a name the app refuses: it will not start anyway
        production = False
    problem = shared_store_problem({**os.environ, "WEB_CONCURRENCY": str(new_value)})
    if production and problem and new_value > old_value:
        server.log.error("not adding a worker: %s", problem)
        server.num_workers = old_value  # calls this hook again, with the values swapped
        return
    os.environ["WEB_CONCURRENCY"] = str(new_value)  # what the next workers check


def post_worker_init(worker) -> None:  # noqa: ANN001
    """Held requests answer and streams end as soon as the worker is told to stop.

    gunicorn waits up to graceful_timeout for in-flight requests (SIGTERM, or
    max_requests recycling): a 30 s wait or an endless stream would hold a stopping
    worker that long. The live hub watches `worker.alive` instead.
    """
    extensions = getattr(worker.wsgi, "extensions", None) or {}
    live = extensions.get("electro_isla.live")
    if live is not None:
        live.hub.alive = lambda: worker.alive


def child_exit(server, worker) -> None:  # noqa: ANN001
    """A dead worker's live gauges (pool usage) must stop counting in the sums, and its
    counters and histograms go into the archives (electro_isla/metrics_files.py).

    Never raises: an exception here leaves gunicorn's main loop and stops the master (a
    reviewer emptied a worker's counter file and its exit took the server down)."""
    from electro_isla.metrics_files import archive_worker

    try:
        unreadable = archive_worker(worker.pid, _prom_dir)
    except Exception:  # noqa: BLE001  the metrics are not worth the server
        server.log.exception("metrics of worker %s not archived", worker.pid)
        return
    for name in unreadable:
        server.log.warning("metrics file %s unreadable: set aside, its counts lost", name)


def on_exit(server) -> None:  # noqa: ANN001
    """Remove the metrics directory if this master created it."""
    if os.environ.get(_PROM_OWNED_VAR) == _prom_dir:
        shutil.rmtree(_prom_dir, ignore_errors=True)
