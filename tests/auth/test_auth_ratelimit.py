"""Login throttling: 5 failures in 60 s per account or per IP -> 429, shared by workers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from electro_isla.auth import service
from electro_isla.auth.models import RefreshToken
from electro_isla.auth.ratelimit import client_key
from electro_isla.cache import shared_redis
from tests.auth.support import count, login, make_usuario

WRONG = "no-es-la-clave"


def assert_429(response) -> int:
    assert response.status_code == 429, response.json
    body = response.json
    assert body["bloqueado"] is True
    assert body["error"] and body["mensaje"]
    assert body["code"] == 429 and body["message"]
    seconds = body["tiempo_restante"]
    assert isinstance(seconds, int) and 1 <= seconds <= 60
    assert response.headers["Retry-After"] == str(seconds)
    assert "Set-Cookie" not in response.headers
    return seconds


def test_five_failures_for_one_username_block_it_from_any_ip(app, client, usuario_id):
    for n in range(5):
        assert login(client, "ana", WRONG, ip=f"10.1.0.{n}").status_code == 401
    # Even the right password is refused now, from yet another IP.
    assert_429(login(client, "ana", ip="10.1.0.99"))
    assert count(app, RefreshToken) == 0
    # Another account is not affected.
    make_usuario(app, username="beto")
    assert login(client, "beto", ip="10.1.0.100").status_code == 200


def test_username_and_email_count_against_one_account(app, client, usuario_id):
    for n in range(3):
        assert login(client, "ana", WRONG, ip=f"10.2.0.{n}").status_code == 401
    for n in range(3, 5):
        assert login(client, "ana@example.test", WRONG, ip=f"10.2.0.{n}").status_code == 401
    assert_429(login(client, "ANA@example.test", ip="10.2.0.50"))


def test_unknown_username_is_throttled_like_a_real_one(app, client):
    for n in range(5):
        assert login(client, "nadie", WRONG, ip=f"10.3.0.{n}").status_code == 401
    assert_429(login(client, "nadie", WRONG, ip="10.3.0.77"))


def test_five_failures_from_one_ip_block_that_ip(app, client, usuario_id):
    for n in range(5):
        assert login(client, f"nadie{n}", WRONG, ip="10.4.0.1").status_code == 401
    assert_429(login(client, "ana", ip="10.4.0.1"))
    # The account itself is fine from elsewhere.
    assert login(client, "ana", ip="10.4.0.2").status_code == 200


def test_an_ipv6_client_counts_as_its_64_whatever_address_it_takes(app, client, usuario_id):
    """The host half of an IPv6 /64 is the client's to choose: one window per address
    let it guess without end, five per fresh address."""
    for n in range(5):
        assert login(client, f"nadie{n}", WRONG, ip=f"2001:db8:4:1::{n + 1:x}").status_code == 401
    assert_429(login(client, "ana", ip="2001:db8:4:1:ffff:1:2:3"))
    assert login(client, "ana", ip="2001:db8:4:2::1").status_code == 200  # another /64


@pytest.mark.parametrize(
    ("remote_addr", "key"),
    [
        ("10.4.0.1", "10.4.0.1"),
        ("2001:db8:4:1:ffff:1:2:3", "2001:db8:4:1::/64"),
        ("::ffff:10.4.0.1", "10.4.0.1"),
        ("64:ff9b::a04:1", "10.4.0.1"),  # NAT64
        ("64:ff9b::a04:2", "10.4.0.2"),
        ("2002:a04:1::1", "10.4.0.1"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:f5fb:fefe", "10.4.1.1"),  # Teredo (client bits inverted)
        ("fe80::1%eth0", "fe80::/64"),
        ("", "unknown"),
        (None, "unknown"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_client_key(remote_addr, key):
    assert client_key(remote_addr) == key


def test_success_resets_the_account_window_but_not_the_ip_window(app, client, usuario_id):
    for n in range(4):
        assert login(client, "ana", WRONG, ip=f"10.5.0.{n}").status_code == 401
    assert login(client, "ana", ip="10.5.0.9").status_code == 200
    for n in range(4):
        assert login(client, "ana", WRONG, ip=f"10.5.1.{n}").status_code == 401
    assert login(client, "ana", ip="10.5.1.9").status_code == 200

    make_usuario(app, username="carla")
    for n in range(4):
        assert login(client, f"nadie{n}", WRONG, ip="10.5.2.1").status_code == 401
    assert login(client, "carla", ip="10.5.2.1").status_code == 200  # own account, same IP
    assert login(client, "nadie", WRONG, ip="10.5.2.1").status_code == 401  # 5th failure
    assert_429(login(client, "carla", ip="10.5.2.1"))


def test_the_block_lifts_when_the_oldest_failure_leaves_the_window(app, client, usuario_id):
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as traveller:
        for n in range(5):
            assert login(client, "ana", WRONG, ip=f"10.6.0.{n}").status_code == 401
            traveller.shift(timedelta(seconds=10))
        # Failures at t=0..40; now t=50: the first leaves the window at t=60.
        assert assert_429(login(client, "ana", ip="10.6.0.9")) == 10
        traveller.shift(timedelta(seconds=11))
        assert login(client, "ana", ip="10.6.0.9").status_code == 200


def test_the_limit_is_shared_by_workers_through_redis(make_app):
    first, second = make_app(), make_app()
    make_usuario(first, username="ana")
    one, two = first.test_client(), second.test_client()
    for n in range(3):
        assert login(one, "ana", WRONG, ip=f"10.7.0.{n}").status_code == 401
    for n in range(3, 5):
        assert login(two, "ana", WRONG, ip=f"10.7.0.{n}").status_code == 401
    assert_429(login(one, "ana", ip="10.7.0.50"))
    assert_429(login(two, "ana", ip="10.7.0.51"))

    prefix = first.config["CACHE_KEY_PREFIX"]
    redis = shared_redis(first)
    mine = [k.decode() for k in redis.scan_iter(match=f"{prefix}:ratelimit:{{login}}:*")]
    assert any(":account:" in k for k in mine) and any(":ip:" in k for k in mine), mine
    # Every window expires with its last entry: nothing is left behind for ever.
    assert all(0 < redis.pttl(k) <= 60_000 for k in mine), mine
    # Rate-limit windows are not cache entries: clearing the cache keeps them.
    with first.app_context():
        from electro_isla.cache import cache_manager

        cache_manager.clear_all()
    assert_429(login(two, "ana", ip="10.7.0.52"))


@pytest.mark.parametrize("window", [2])
def test_window_and_maximum_come_from_configuration(make_app, window):
    app = make_app(LOGIN_MAX_FAILURES=2, LOGIN_WINDOW_SECONDS=window)
    make_usuario(app, username="ana")
    client = app.test_client()
    assert login(client, "ana", WRONG, ip="10.8.0.1").status_code == 401
    assert login(client, "ana", WRONG, ip="10.8.0.2").status_code == 401
    assert assert_429(login(client, "ana", ip="10.8.0.3")) <= window


def slow_and_counted(monkeypatch) -> Counter:
    """Make every password check slow (as real scrypt is) and count how many really ran."""
    checked: Counter = Counter()
    real = service.credentials_valid
    lock = threading.Lock()

    def check(usuario, password):
        with lock:
            checked["passwords"] += 1
        time.sleep(0.2)
        return real(usuario, password)

    monkeypatch.setattr(service, "credentials_valid", check)
    return checked


def parallel(n: int, attempt) -> Counter:
    barrier = threading.Barrier(n)
    statuses: Counter = Counter()
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        status = attempt(i).status_code
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_thirty_parallel_guesses_over_two_workers_check_at_most_five(make_app, monkeypatch):
    first, second = make_app(), make_app()
    make_usuario(first, username="ana")
    checked = slow_and_counted(monkeypatch)

    def guess(i: int):
        worker = (first, second)[i % 2]
        return login(worker.test_client(), "ana", WRONG, ip=f"10.10.{i}.1")

    statuses = parallel(30, guess)

    assert statuses[401] + statuses[429] == 30, statuses
    assert statuses[401] <= 5 and checked["passwords"] <= 5, (statuses, checked)
    assert statuses[401] == checked["passwords"]


def test_thirty_parallel_guesses_from_one_ip_check_at_most_five(make_app, monkeypatch):
    app = make_app()
    checked = slow_and_counted(monkeypatch)
    statuses = parallel(30, lambda i: login(app.test_client(), f"nadie{i}", WRONG, ip="10.11.0.1"))
    assert statuses[401] + statuses[429] == 30, statuses
    assert statuses[401] <= 5 and checked["passwords"] <= 5, (statuses, checked)


def test_parallel_guesses_are_bounded_on_the_in_process_store_too(sqlite_app, monkeypatch):
    make_usuario(sqlite_app, username="ana")
    checked = slow_and_counted(monkeypatch)
    statuses = parallel(
        30, lambda i: login(sqlite_app.test_client(), "ana", WRONG, ip=f"10.12.{i}.1")
    )
    assert statuses[401] + statuses[429] == 30, statuses
    assert statuses[401] <= 5 and checked["passwords"] <= 5, (statuses, checked)


def test_parallel_right_passwords_are_not_refused_by_their_own_reservations(make_app):
    """Successes give their places back: five logins at once from one office IP all work,
    and the IP can still fail four times afterwards before it is blocked."""
    app = make_app()
    for n in range(5):
        make_usuario(app, username=f"empleado{n}")
    statuses = parallel(5, lambda i: login(app.test_client(), f"empleado{i}", ip="10.13.0.1"))
    assert statuses == Counter({200: 5})
    client = app.test_client()
    for n in range(5):
        assert login(client, f"nadie{n}", WRONG, ip="10.13.0.1").status_code == 401
    assert_429(login(client, "empleado0", ip="10.13.0.1"))
