"""The one gunicorn launcher: `gunicorn wsgi:app` as a child process the caller owns.

Drills kill, pause and stop it; the live, console and chunked-body tests talk to it;
the benchmarks measure it (`measuring=True`), also on another tree (a base commit).
Configured only from the environment and the command line.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from electro_isla_testing.servers import free_port

PROJECT_DIR = Path(__file__).resolve().parents[1]
SECRET_KEY = "drill-signing-key-long-enough-for-hs256-0123456789"
# What a deployment's environment has beside the app's own settings (inherit_env=False).
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL")
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
# The project's own start, as a deployment runs it (cwd: the project).
COMMAND = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]


def deployment_env(**settings: str) -> dict[str, str]:
    """A deployment's environment: BASE_ENV from this process, then `settings`, nothing
    else inherited (so a setting of the machine running the tests cannot leak in)."""
    return {**{k: v for k, v in os.environ.items() if k in BASE_ENV}, **settings}


def start_once(env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run COMMAND with `env` to its end: for starts that must be refused."""
    return subprocess.run(
        COMMAND, cwd=PROJECT_DIR, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


class GunicornServer:
    """gunicorn serving `app` from `tree` on a free loopback port.

    `use_project_config`: the tree's gunicorn.conf.py (else an empty one); `workers` or
    `threads` None lets that file decide. `settings_via_env`: bind, workers and threads
    reach that file through BIND, WEB_CONCURRENCY and GUNICORN_THREADS, as in production
    (its thread arithmetic applies), not as command-line flags. `measuring`: that, plus
    workers never recycled, access log off, warnings only, and every worker touched once
    before `start` returns, so a measurement pays neither for re-imports nor for a worker
    importing the app mid-run. `inherit_env=False`: only BASE_ENV from this process.
    `access_log`: stdout (the access log) in `access_path`, apart from `log_path`.
    `wait_for_workers`: `start` returns once every worker has booted and `ready_path`
    answers. `extra_env` is applied last (a benchmark's SECRET_KEY, CACHE_KEY_PREFIX...).
    """

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        *,
        workers: int | None = 2,
        threads: int | None = 4,
        prefix: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        use_project_config: bool = False,
        tree: Path = PROJECT_DIR,
        app: str = "wsgi:app",
        measuring: bool = False,
        settings_via_env: bool = False,
        inherit_env: bool = True,
        access_log: bool = False,
        wait_for_workers: bool = False,
        ready_path: str = "/healthz",
    ) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="ei-gunicorn-"))
        self.prefix = prefix or f"drill{uuid.uuid4().hex[:8]}"
        inherited = (
            os.environ if inherit_env else {k: v for k, v in os.environ.items() if k in BASE_ENV}
        )
        self.env = {
            **inherited,
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "CACHE_KEY_PREFIX": self.prefix,
            "LOG_DIR": str(self.tmp / "logs"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prom"),
            "PYTHONUNBUFFERED": "1",
        }
        (self.tmp / "prom").mkdir()
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        if measuring:
            self.env.update(
                GUNICORN_MAX_REQUESTS="0",
                GUNICORN_ACCESS_LOG="/dev/null",
                GUNICORN_LOG_LEVEL="warning",
            )
        self.env.update(extra_env or {})
        self.env["PYTHONPATH"] = str(tree)  # before the editable install's path (another tree)
        self.workers = workers
        self.threads = threads
        self.use_project_config = use_project_config or measuring or settings_via_env
        self.settings_via_env = settings_via_env or measuring
        self.tree = tree
        self.app = app
        self.measuring = measuring
        self.wait_for_workers = wait_for_workers
        self.ready_path = ready_path
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "gunicorn.log"  # stderr (and stdout without access_log)
        self.access_path = self.tmp / "access.log" if access_log else self.log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> GunicornServer:
        config = self.tree / "gunicorn.conf.py"
        if not (self.use_project_config and config.exists()):
            config = self.tmp / "gunicorn.conf.py"
            config.write_text("# empty: every setting comes from the command line\n")
        cmd = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(config)]
        if self.settings_via_env:
            # As production sets them: through the config file's variables, so its
            # thread arithmetic (live waiters on top of GUNICORN_THREADS) applies.
            self.env.update(BIND=f"127.0.0.1:{self.port}")
            if self.workers is not None:
                self.env.update(WEB_CONCURRENCY=str(self.workers))
            if self.threads is not None:
                self.env.update(GUNICORN_THREADS=str(self.threads))
        else:
            # None: the config file (or gunicorn) decides.
            if self.workers is not None:
                cmd += ["--workers", str(self.workers)]
            if self.threads is not None:
                cmd += ["--threads", str(self.threads)]
            cmd += ["--bind", f"127.0.0.1:{self.port}", "--timeout", "60"]
            cmd += ["--graceful-timeout", "10"]
        cmd.append(self.app)
        self._log = self._access = open(self.log_path, "wb")  # noqa: SIM115  stop() closes
        stderr: Any = subprocess.STDOUT  # one file for both
        if self.access_path != self.log_path:
            self._access = open(self.access_path, "wb")  # noqa: SIM115  closed in stop()
            stderr = self._log
        self.proc = subprocess.Popen(
            cmd, cwd=self.tree, env=self.env, stdout=self._access, stderr=stderr
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            if self._ready():
                if self.measuring:
                    for _ in range((self.workers or 4) * 8):
                        requests.get(f"{self.url}/healthz", timeout=5)
                return self
            time.sleep(0.1)
        self.stop(timeout=5)  # no master and workers left behind by a failed start
        raise RuntimeError(f"gunicorn did not answer: {self.log_tail()}")

    def _ready(self) -> bool:
        if self.wait_for_workers and len(self.booted_pids()) < (self.workers or 1):
            return False
        with contextlib.suppress(requests.RequestException):
            return requests.get(self.url + self.ready_path, timeout=10).status_code == 200
        return False

    def booted_pids(self) -> set[int]:
        """Every worker that logged its boot (recycled ones too), from the error log."""
        with contextlib.suppress(OSError):
            return {int(p) for p in BOOTED.findall(self.log_path.read_text(errors="replace"))}
        return set()

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(p) for p in out.split()]

    def worker_serving(self, client_port: int) -> int:
        """The worker holding the server end of the loopback connection from `client_port`
        (Linux: /proc/net/tcp gives the socket's inode, a worker's fds name it)."""
        wanted = f"{self.port:04X}", f"{client_port:04X}"
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
            if (local, remote) == wanted:
                inodes.add(f"socket:[{fields[9]}]")
        for pid in self.worker_pids():
            fds = Path(f"/proc/{pid}/fd")
            with contextlib.suppress(OSError):
                for fd in os.listdir(fds):
                    with contextlib.suppress(OSError):  # closed meanwhile
                        if os.readlink(fds / fd) in inodes:
                            return pid
        raise LookupError(f"no worker holds the connection from port {client_port}")

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def errors_logged(self) -> str:
        """The error lines and tracebacks the workers logged, for assertion messages."""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            keep = [
                ln
                for ln in lines
                if "ERROR" in ln or "Traceback" in ln or "Error:" in ln or ln.startswith("  ")
            ]
            return "\n".join(keep[-60:])
        return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Send `sig` and wait (killed after `timeout`); gunicorn's exit status, None if it
        never started. A no-op on a server already stopped."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout or (30 if self.measuring else 20))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for log in {self._log, self._access}:
            with contextlib.suppress(Exception):
                log.close()
        return self.proc.returncode


def serve_for_measuring(
    env: Mapping[str, str],
    workers: int,
    *,
    tree: Path = PROJECT_DIR,
    app: str = "wsgi:app",
    extra_env: Mapping[str, str] | None = None,
) -> GunicornServer:
    """A started, warmed gunicorn for a benchmark, on the settings `env` names
    (DATABASE_URL, REDIS_URL or the Sentinel/Cluster ones, SECRET_KEY, CACHE_KEY_PREFIX)."""
    server = GunicornServer(
        env["DATABASE_URL"],
        env.get("REDIS_URL"),
        workers=workers,
        threads=4,
        tree=tree,
        app=app,
        measuring=True,
        extra_env={**env, **(extra_env or {})},
    )
    return server.start(timeout=60)
