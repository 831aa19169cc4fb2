"""`make run` serves on PORT when given (the default port may be taken on a laptop)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is a prerequisite")
@pytest.mark.parametrize(("args", "port"), [([], "5000"), (["PORT=5017"], "5017")])
def test_make_run_serves_and_prints_the_port_it_was_given(args: list[str], port: str) -> None:
    # A PORT in the environment is gunicorn's (.env.example: 8000), not make run's.
    env = {**os.environ, "PORT": "8000"}
    planned = subprocess.run(
        ["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    ).stdout
    serve = [line for line in planned.splitlines() if " run --host " in line]
    assert serve and serve[-1].endswith(f"--port {port}")
    assert f"http://127.0.0.1:{port}/api/auth/login/" in planned
