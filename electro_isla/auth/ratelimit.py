"""Throttling in moving windows: login failures and registrations -> 429.

Login: 5 failed attempts within 60 s per account or per IP. Registration: 10
accounts per hour from one IP (REGISTER_MAX_PER_IP, REGISTER_WINDOW_SECONDS), so
an anonymous client cannot create accounts without bound; a refused (409)
registration keeps its place, so it cannot probe for taken emails faster either.

Each attempt *reserves* a place in both windows (the account's and the IP's)
before the password hash is checked, in one atomic step: when either window
already holds the maximum, nothing is reserved and the answer is 429. A
failed attempt simply keeps its places (they are the failures counted); a
success gives its IP place back and clears the account's window. So N
parallel guesses can never have more than the maximum checked: checking,
hashing, then recording (the previous design) let 19 of 30 parallel guesses
through a limit of 5.

Windows are moving: every entry leaves the window `LOGIN_WINDOW_SECONDS`
after its attempt, and a 429 says when the oldest one will. With
a shared Redis (any REDIS_MODE) they are sorted sets under `<prefix>:ratelimit:{<name>}:`,
reserved by one Lua script (all of a request's windows at once) and shared by every
worker process;
without Redis, or while Redis is unreachable, each process keeps its own
windows under a lock (degraded, but login keeps working and stays throttled).

A success clears the account's window but not the IP's other entries, so an
attacker cannot reset an IP's count by logging into their own account between
guesses.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flask import Flask, current_app

from electro_isla.proxy import client_ip
from electro_isla.shared_store import REDIS_ERRORS, RedisHealth, redis_health, shared_redis

log = logging.getLogger("electro_isla.auth")

EXTENSION_KEY = "electro_isla.auth.limiter"
REGISTER_EXTENSION_KEY = "electro_isla.auth.register_limiter"
LOCAL_SWEEP_EVERY = 256

# KEYS: the windows to reserve in. ARGV: now (epoch s), window (s), maximum, member.
# Returns nil when reserved, else the seconds until the fullest window frees a place.
RESERVE_SCRIPT = """
local now, window, maximum = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= maximum then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local left = tonumber(oldest[2]) + window - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window * 1000))
end
return false
"""


@dataclass(frozen=True)
class Block:
    """A refused attempt: how long until the oldest counted entry leaves the window."""

    seconds: int


@dataclass(frozen=True)
class Attempt:
    """A reserved attempt: where its places are, so a success can give them back."""

    account: str
    ip: str
    member: str
    shared: bool


def account_key(identifier: str, usuario_id: int | None) -> str:
    """One window per account, whichever of username or email was typed.

    Unknown identifiers are hashed: they are user input (any length, any bytes).
    """
    if usuario_id is not None:
        return f"user:{usuario_id}"
    digest = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
    return f"name:{digest}"


def client_key(remote_addr: str | None) -> str:
    """What a per-address window counts: an IPv4 address, or the /64 an IPv6 one is in.

    A /64 is the smallest network a site or subscriber gets, and its host half is
    theirs to choose: counting single IPv6 addresses would give such a client 2^64
    windows (fresh addresses are free), not one. (A subscriber delegated a /56 or a
    /48 still has 256 or 65,536.) An IPv6 address that carries an IPv4 client
    (IPv4-mapped, NAT64's 64:ff9b::/96, 6to4, Teredo) counts as that IPv4 address:
    behind a NAT64 gateway every IPv4 client shares one /64."""
    address = client_ip(remote_addr or "")
    if address is None:
        return remote_addr or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        carried = _carried_ipv4(address)
        if carried is not None:
            return str(carried)
        # From the integer: a zone id (fe80::1%eth0) names no other client.
        return str(ipaddress.IPv6Network((int(address), 64), strict=False))
    return str(address)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 client inside (IPv4-mapped ones client_ip has mapped already)."""
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client)
    return None


def _block(wait: float) -> Block:
    # Redis hands floats back as strings with 17 digits: round off that noise.
    return Block(seconds=max(1, math.ceil(round(wait, 3))))


class LocalWindows:
    """This process's windows: key -> {member: time}, all under one lock."""

    def __init__(self) -> None:
        self._windows: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._ops = 0

    def reserve(
        self, keys: list[str], now: float, window: float, maximum: int, member: str
    ) -> float | None:
        with self._lock:
            self._sweep(now, window)
            wait = 0.0
            for key in keys:
                entries = self._windows.get(key, {})
                live = {m: t for m, t in entries.items() if t > now - window}
                self._windows[key] = live
                if len(live) >= maximum:
                    wait = max(wait, min(live.values()) + window - now)
            if wait > 0:
                return wait
            for key in keys:
                self._windows[key][member] = now
            return None

    def release(self, key: str, member: str) -> None:
        with self._lock:
            self._windows.get(key, {}).pop(member, None)

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def _sweep(self, now: float, window: float) -> None:
        """Drop windows whose entries have all left, so memory follows live attempts only."""
        self._ops += 1
        if self._ops % LOCAL_SWEEP_EVERY:
            return
        self._windows = {
            key: entries
            for key, entries in self._windows.items()
            if entries and max(entries.values()) > now - window
        }

    def __len__(self) -> int:
        return len(self._windows)


class WindowLimiter:
    """At most `maximum` places per `window` seconds in each of a request's windows."""

    def __init__(self, app: Flask, name: str, maximum: int, window: float) -> None:
        self.app = app
        self.maximum = maximum
        self.window = window
        # One hash tag per limiter: on Redis Cluster all of a request's windows share
        # a slot (the login's account and IP), so one script reserves them together.
        self.prefix = f"{app.config['CACHE_KEY_PREFIX']}:ratelimit:{{{name}}}"
        self.local = LocalWindows()
        self.client: Any = None
        self.script: Any = None
        client = shared_redis(app)
        if client is not None:
            self.client = client
            self.script = client.register_script(RESERVE_SCRIPT)

    def key(self, scope: str, value: str) -> str:
        return f"{self.prefix}:{scope}:{value}"

    @cached_property
    def health(self) -> RedisHealth:
        return redis_health(self.app)

    def _shared_usable(self) -> bool:
        return self.client is not None and self.health.client() is not None

    def _redis_failed(self, action: str, exc: Exception) -> None:
        self.health.failed(f"ratelimit {action}", f"{self.prefix}:*", exc)
        log.warning("RATELIMIT %s on this process, Redis unavailable: %s", action, exc)

    def take(self, keys: list[str]) -> tuple[str, bool] | Block:
        """A place in every window of `keys` ((member, in Redis?)), or how long to wait."""
        member = uuid.uuid4().hex
        now = time.time()
        if self._shared_usable():
            try:
                wait = self.script(keys=keys, args=[now, self.window, self.maximum, member])
            except REDIS_ERRORS as exc:
                self._redis_failed("reserving", exc)
            else:
                self.health.worked()
                return (member, True) if wait is None else _block(float(wait))
        wait = self.local.reserve(keys, now, self.window, self.maximum, member)
        return (member, False) if wait is None else _block(wait)


class LoginLimiter(WindowLimiter):
    def __init__(self, app: Flask) -> None:
        maximum, window = app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_WINDOW_SECONDS"]
        super().__init__(app, "login", int(maximum), float(window))

    def reserve(self, account: str, ip: str) -> Attempt | Block:
        """Take a place in both windows, or say how long until one frees up."""
        taken = self.take([self.key("account", account), self.key("ip", ip)])
        if isinstance(taken, Block):
            return taken
        member, shared = taken
        return Attempt(account, ip, member, shared=shared)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear the account's window, give the IP place back."""
        account, ip = self.key("account", attempt.account), self.key("ip", attempt.ip)
        if attempt.shared:
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.delete(account)
                pipe.zrem(ip, attempt.member)
                pipe.execute()
            except REDIS_ERRORS as exc:
                # The place stays until the window moves past it: stricter, never looser.
                self._redis_failed("releasing", exc)
            return
        self.local.clear(account)
        self.local.release(ip, attempt.member)


def login_limiter(app: Flask | None = None) -> LoginLimiter:
    """This app's login limiter, created on first use."""
    return _per_app(app, EXTENSION_KEY, LoginLimiter)


def register_limiter(app: Flask | None = None) -> WindowLimiter:
    """This app's registration limiter (one window per IP), created on first use."""

    def make(real: Flask) -> WindowLimiter:
        maximum, window = real.config["REGISTER_MAX_PER_IP"], real.config["REGISTER_WINDOW_SECONDS"]
        return WindowLimiter(real, "register", int(maximum), float(window))

    return _per_app(app, REGISTER_EXTENSION_KEY, make)


def _per_app(app: Flask | None, key: str, make: Callable[[Flask], Any]) -> Any:
    """app.extensions[key], made from the app (not a proxy) the first time."""
    app = app or current_app
    limiter = app.extensions.get(key)
    if limiter is None:
        limiter = app.extensions.setdefault(key, make(app.app_context().app))
    return limiter
