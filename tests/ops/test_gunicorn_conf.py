"""gunicorn.conf.py: settings from the environment, and the metrics directory."""

from __future__ import annotations

import json
import os
import runpy
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from electro_isla_testing.gunicorn import COMMAND, PROJECT_DIR, deployment_env, start_once
from electro_isla_testing.servers import free_port

CONF = str(PROJECT_DIR / "gunicorn.conf.py")
VARS = (
    "BIND",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
    "LIVE_MAX_WAITERS",
    "LIVE_ORDINARY_THREADS",
    "PROMETHEUS_MULTIPROC_DIR",
    "ELECTRO_ISLA_PROMETHEUS_DIR_READY",
    "ELECTRO_ISLA_PROMETHEUS_DIR_OWNED",
)


@pytest.fixture
def load(tmp_path):
    """Run the config file as gunicorn does, with a clean slate of its variables."""
    saved = dict(os.environ)
    for var in VARS:
        os.environ.pop(var, None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")

    def run(**env: str) -> dict:
        os.environ.update(env)
        return runpy.run_path(CONF)

    yield run
    os.environ.clear()
    os.environ.update(saved)


def test_defaults(load):
    conf = load()
    assert conf["bind"] == "0.0.0.0:8000"
    assert 1 <= conf["workers"] <= 8
    # 4 for ordinary requests, plus LIVE_MAX_WAITERS (100) for held requests and streams.
    assert conf["threads"] == 4 + 100 and conf["worker_class"] == "gthread"
    assert os.environ["LIVE_ORDINARY_THREADS"] == "4"
    assert conf["timeout"] == 30 and conf["graceful_timeout"] == 30
    assert conf["max_requests"] == 1000 and conf["max_requests_jitter"] == 100
    assert "%({x-request-id}o)s" in conf["access_log_format"]
    assert "%(M)s" in conf["access_log_format"]
    assert conf["preload_app"] is False
    assert callable(conf["child_exit"])


def test_environment_overrides(load):
    conf = load(
        WEB_CONCURRENCY="5",
        GUNICORN_THREADS="1",
        LIVE_MAX_WAITERS="0",
        PORT="9000",
        GUNICORN_TIMEOUT="60",
    )
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (5, 1, "sync")
    conf = load(GUNICORN_THREADS="2", LIVE_MAX_WAITERS="30")
    assert (conf["threads"], conf["worker_class"]) == (32, "gthread")
    assert conf["bind"] == "0.0.0.0:9000"
    assert conf["timeout"] == 60
    assert load(BIND="127.0.0.1:7000")["bind"] == "127.0.0.1:7000"


def test_a_given_metrics_dir_is_wiped_once_not_on_reload(load, tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"stale")
    (metrics / "keep.txt").write_text("not ours")
    load()
    assert not (metrics / "counter_123.db").exists()  # a previous run's counters
    assert (metrics / "keep.txt").exists()
    (metrics / "counter_456.db").write_bytes(b"live")
    load()  # SIGHUP reload: same master, live counters stay
    assert (metrics / "counter_456.db").exists()


def test_an_unset_metrics_dir_is_created_and_removed_on_exit(load):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
    conf = load()
    created = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert created.is_dir()
    conf["on_exit"](None)
    assert not created.exists()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        # 0 workers: gunicorn listened with no worker, every request hung.
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, not 0"),
        ("GUNICORN_THREADS", "0", "GUNICORN_THREADS must be at least 1, not 0"),
        ("PORT", "abc", "PORT: 'abc' is not a whole number"),
        ("GUNICORN_TIMEOUT", "-1", "GUNICORN_TIMEOUT must be at least 0, not -1"),
        (
            "GUNICORN_LOG_LEVEL",
            "loud",
            "GUNICORN_LOG_LEVEL must be one of debug, info, warning, error, critical, not 'loud'",
        ),
    ],
)
def test_a_value_that_cannot_work_stops_gunicorn_naming_it(load, var, value, message):
    with pytest.raises(SystemExit, match=f"^{message}$"):
        load(**{var: value})


def test_a_refused_start_leaves_no_metrics_directory(tmp_path):
    """An operator's probe: 7 refused starts left 7 empty electro-isla-metrics-* dirs."""
    result = start_once(deployment_env(TMPDIR=str(tmp_path), GUNICORN_TIMEOUT="-1"))
    assert result.returncode != 0 and "GUNICORN_TIMEOUT must be at least 0" in result.stderr
    assert list(tmp_path.glob("electro-isla-metrics-*")) == []


def test_under_log_format_json_every_line_of_gunicorn_is_json(tmp_path):
    """ "Starting gunicorn" is logged before on_starting, where the JSON format was set:
    the first line of every start was plain text among JSON ones (an operator's probe)."""
    env = deployment_env(
        TMPDIR=str(tmp_path),
        LOG_FORMAT="json",
        WEB_CONCURRENCY="1",
        BIND=f"127.0.0.1:{free_port()}",  # loopback only, as the other gunicorn tests
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        SECRET_KEY=secrets.token_urlsafe(32),
    )
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            COMMAND,
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert "Starting gunicorn" in lines[0]
    assert [json.loads(line)["logger"] for line in lines[:3]] == ["gunicorn.error"] * 3
    for line in lines:
        json.loads(line)  # every one, to the last ("Shutting down: Master")
