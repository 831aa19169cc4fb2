"""The operator console's cost: what N open consoles add to the statistics' computations.

    .venv/bin/python bench/consola.py [--pages 2] [--seconds 60] [--every 5]

Starts a demo store (private PostgreSQL + Redis + gunicorn, electro_isla_testing/consola.py),
opens N consoles in headless Chromium logged in as admin, then for a minute places
an order every few seconds through the API. It reads the cache's `fetches` (how
often a statistic was really computed) for the four statistics before and after,
and counts each page's requests by kind. One fetch per change per statistic,
whatever N, is the target: the consoles share the cache (and the stream) instead
of each computing its own figures.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from electro_isla_testing.consola import (
    ADMIN,
    STAT_NAMES,
    Api,
    chromium,
    demo_console,
    figures,
    log_in,
    mode,
    statistics_fetches,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent


def requests_by_kind(driver) -> Counter:
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);"
    )
    kinds = Counter()
    for path in names:
        if "/graficos/" in path:
            kinds["chart"] += 1
        elif path.endswith("/stream/"):
            kinds["stream"] += 1
        elif "/estadisticas/" in path:
            kinds["poll"] += 1
        elif "/cache/stats/" in path or path == "/readyz":
            kinds["cache panel"] += 1
        else:
            kinds["other"] += 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between orders")
    args = parser.parse_args()

    with demo_console(pedidos=3000) as server:
        api = Api(server.url, *ADMIN)
        drivers = [chromium() for _ in range(args.pages)]
        pages = [d.__enter__() for d in drivers]
        try:
            for page in pages:
                log_in(page, server.url, *ADMIN)
            for page in pages:
                if not wait_until(lambda p=page: "reporte.resumen.total_pedidos" in figures(p), 30):
                    raise SystemExit("a console did not show its figures")
            time.sleep(4)
            loaded = statistics_fetches(api)
            for page in pages:  # from here on: what a minute of live updates costs
                page.execute_script("performance.clearResourceTimings();")
            orders = 0
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                api.place_order()
                orders += 1
                time.sleep(args.every)
            time.sleep(4)
            after = statistics_fetches(api)
            shown = [
                p.execute_script(
                    "return document.querySelector('[data-field=\"reporte.resumen.total_pedidos\"]')"
                    ".dataset.value;"
                )
                for p in pages
            ]
            modes = [mode(p) for p in pages]
            kinds = [requests_by_kind(p) for p in pages]
        finally:
            for d in drivers:
                d.__exit__(None, None, None)

    print(f"{args.pages} console(s) open, {orders} orders in {args.seconds} s; page mode: {modes}")
    print(f"total_pedidos shown at the end: {shown}")
    print(f"{'statistic':<24}{'fetches on load':>16}{'fetches in the minute':>23}{'per order':>11}")
    for name in STAT_NAMES:
        added = after[name] - loaded[name]
        print(f"{name:<24}{loaded[name]:>16}{added:>23}{added / orders:>11.2f}")
    for i, k in enumerate(kinds):
        print(f"page {i + 1} requests in the minute: {dict(k)}")


if __name__ == "__main__":
    main()
