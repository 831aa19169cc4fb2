"""FollowingPool's bookkeeping, with a stand-in for the sentinels (the failover itself
runs on real servers in test_sentinel.py)."""

from __future__ import annotations

import threading
import time

from redis.exceptions import InvalidResponse

from electro_isla.shared_store.sentinel import FollowingPool


class Sentinels:
    """Answers `discover_master` from a script of addresses or exceptions."""

    def __init__(self, *answers: object, pause: float = 0.0) -> None:
        self.answers = list(answers)
        self.pause = pause
        self.calls = 0
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def discover_master(self, _service: str) -> tuple[str, int]:
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        time.sleep(self.pause)
        with self._lock:
            self.inside -= 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def pool(sentinels: Sentinels, every: float = 0.0) -> FollowingPool:
    return FollowingPool("mymaster", sentinels, check_every=every)


def test_a_move_found_by_a_connection_is_counted_once():
    sentinels = Sentinels(("10.0.0.1", 6379), ("10.0.0.2", 6379))
    p = pool(sentinels)
    p.proxy.get_master_address()  # a connection opening: the first address
    p.proxy.get_master_address()  # another one, after the failover: it moves the pool
    assert p.switches == 1
    assert not p.follow(), "the check finds the master where the connection left it"
    assert p.switches == 1


def test_the_follower_survives_a_lookup_that_fails_in_any_way():
    sentinels = Sentinels(
        ("10.0.0.1", 6379), InvalidResponse("garbled"), ValueError("odd"), ("10.0.0.2", 6379)
    )
    p = pool(sentinels, every=0.05)
    p.proxy.get_master_address()
    p._ensure_follower()  # noqa: SLF001  what get_connection does first
    deadline = time.monotonic() + 3
    while p.switches == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.switches == 1, "the thread went on after the failures and saw the move"
    assert any(t.name == "sentinel-follow" and t.is_alive() for t in threading.enumerate())


def test_lookups_of_one_pool_are_made_one_at_a_time():
    # redis-py's discover_master reorders the shared sentinel list with an index read
    # before its network call: two at once can copy one sentinel over another.
    sentinels = Sentinels(("10.0.0.1", 6379), pause=0.05)
    p = pool(sentinels)
    threads = [threading.Thread(target=p.proxy.get_master_address) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sentinels.calls == 4
    assert sentinels.most_inside == 1
