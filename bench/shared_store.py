"""Benchmark: what the lazy client of electro_isla.shared_store costs per Redis command.

    .venv/bin/python bench/shared_store.py [--calls 20000] [--rounds 5]

Starts a private redis-server (electro_isla_testing/servers.py) and times, interleaved round by
round, the commands a cache HIT sends (EVALSHA of a small script, GET) through
the real redis-py client and through the `LazyClient` that stands for it (one
`__getattr__` per call), both built by `build_client` with the app's settings.
Prints microseconds per call and the ratio lazy/direct, then what the proxy adds
without the network: the cost of looking the method up (`client.get`) alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

from electro_isla.config import Config
from electro_isla.shared_store.clients import build_client, lazy_client
from electro_isla_testing.servers import RedisServer


def per_call(fn, calls: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        config = {**Config.__dict__, "REDIS_URL": server.url, "REDIS_MODE": "standalone"}
        direct, lazy = build_client(config), lazy_client(config)
        assert lazy is not None
        direct.set("bench:k", "v")
        scripts = {
            "direct": direct.register_script("return redis.call('GET', KEYS[1])"),
            "lazy": lazy.register_script("return redis.call('GET', KEYS[1])"),
        }
        clients = {"direct": direct, "lazy": lazy}
        results: dict[str, dict[str, list[float]]] = {
            op: {name: [] for name in clients} for op in ("get", "evalsha")
        }
        for _ in range(args.rounds):
            for name, client in clients.items():
                results["get"][name].append(per_call(lambda c=client: c.get("bench:k"), args.calls))
                script = scripts[name]
                results["evalsha"][name].append(
                    per_call(lambda s=script: s(keys=["bench:k"]), args.calls)
                )
        print(f"{'command':10} {'direct us':>10} {'lazy us':>10} {'lazy/direct':>12}")
        for op, by_name in results.items():
            d, z = statistics.median(by_name["direct"]), statistics.median(by_name["lazy"])
            print(f"{op:10} {d:10.1f} {z:10.1f} {z / d:12.3f}")
        lookups = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, client in clients.items():
                lookups[name].append(per_call(lambda c=client: c.get, args.calls * 10) * 1000)
        d, z = statistics.median(lookups["direct"]), statistics.median(lookups["lazy"])
        print(
            f"method lookup alone: direct {d:.0f} ns, lazy {z:.0f} ns (+{z - d:.0f} ns per command)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
