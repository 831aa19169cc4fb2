"""gunicorn on loopback for the benchmarks: the project's gunicorn.conf.py, quiet, no recycling."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class BenchServer:
    """gunicorn serving `app` from `tree` (its own gunicorn.conf.py), warmed before measuring.

    Workers are never recycled (GUNICORN_MAX_REQUESTS=0) so a measurement does not
    pay for re-imports; every worker is touched once so none imports the app mid-run.
    """

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        workers: int,
        *,
        tree: Path = ROOT,
        app: str = "wsgi:app",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", str(tree / "gunicorn.conf.py"), app],
            cwd=tree,
            env={
                **env,
                "PYTHONPATH": str(tree),  # before the editable install's path
                "BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": "4",
                "GUNICORN_MAX_REQUESTS": "0",
                "GUNICORN_ACCESS_LOG": "/dev/null",
                "GUNICORN_LOG_LEVEL": "warning",
                **(extra_env or {}),
            },
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn did not start in {tree}")
            time.sleep(0.2)
        for _ in range(workers * 8):
            requests.get(self.base + "/healthz", timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
