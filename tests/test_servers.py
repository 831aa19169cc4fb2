"""electro_isla_testing/servers.py: a fault test's Redis is the process it started.

A drill that restarts a killed server on its old port must not go on with whatever
answers there: the kill -9 Sentinel drill once met a fresh master on its old master's
port in CI, and waited 30 s for a replica that was not its own.
"""

from __future__ import annotations

import pytest

from electro_isla_testing.servers import PortTaken, RedisServer


def test_a_server_whose_port_another_holds_says_who_and_leaves_nothing_running():
    holder = RedisServer().start()
    late = RedisServer(port=holder.port)
    try:
        with pytest.raises(PortTaken, match=rf"pid {holder.proc.pid} answers"):
            late.start()
        assert late.proc is not None and late.proc.poll() is not None
    finally:
        late.stop()
        holder.stop()


def test_a_server_that_never_answers_is_not_left_running():
    # An option redis-server refuses: it exits at once, and nothing else answers.
    broken = RedisServer(args=("--no-such-option", "1"))
    try:
        with pytest.raises(PortTaken, match="nothing answers"):
            broken.start()
        assert broken.proc is not None and broken.proc.poll() is not None
    finally:
        broken.stop()
