"""TRUSTED_PROXIES: whose address the per-IP login limit counts."""

import pytest


def _fail_login(client, forwarded_for):
    # A different unknown username each time, so only the per-IP limit can bite.
    return client.post(
        "/api/auth/login/",
        json={"username": f"nadie{forwarded_for}", "password": "incorrecta"},
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.mark.parametrize(("hops", "blocked_after"), [(0, True), (1, False)])
def test_forwarded_for_is_trusted_only_behind_configured_proxies(make_app, hops, blocked_after):
    client = make_app(TRUSTED_PROXIES=hops).test_client()
    # Five failures from five different client addresses, as one proxy would relay them.
    for n in range(5):
        assert _fail_login(client, f"203.0.113.{n}").status_code == 401
    # With no trusted proxy every request comes from the proxy itself: one IP, blocked.
    response = _fail_login(client, "203.0.113.99")
    assert (response.status_code == 429) is blocked_after
