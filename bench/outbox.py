"""Benchmark: what the transactional outbox costs a write, base commit beside this tree, one run.

    .venv/bin/python bench/outbox.py [--base fdfee28] [--rounds 7] [--orders 60] [--workers 2]

Starts private PostgreSQL and Redis servers, a database per tree migrated by its
own migrations and filled with the data of bench/cache_hit.py (200 productos, 3000
usuarios, 60000 pedidos; `base_beside_head` in bench/catalogue.py), and serves
three gunicorns side by side with the project's gunicorn.conf.py: `base` runs
the code of --base (bumps applied after COMMIT, nothing recorded; a `git
archive` export), `head` this tree (bumps recorded in the order's transaction,
applied, then the rows deleted off the request path), and `sin-outbox` this
tree with its rows turned off (bench/sin_outbox.py: bumps applied after COMMIT,
nothing recorded; on head's database). Each has its own key prefix on the one Redis.

head / sin-outbox is what the outbox costs a write (the issue's target, <= 1.1);
head / base is that plus everything else that changed since --base (e.g. the
rollup triggers of migration 0007).

One client places orders one after another (POST /api/pedidos/, 1-2 productos),
rotating order by order between the servers (who goes first rotates too), after
unmeasured warm-up orders; reported: p50 and p95 per server, and the p50 ratios
per round (median). Every order must be a 201, and head must leave no outbox row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import psycopg
import requests
from catalogue import base_beside_head, tokens

from electro_isla_testing.databases import libpq_url
from electro_isla_testing.gunicorn import serve_for_measuring

ROOT = Path(__file__).resolve().parent.parent

WARM = 20


def order(session: requests.Session, base: str, headers: dict, rng: random.Random) -> float:
    items = [
        {"producto_id": pid, "cantidad": rng.randint(1, 3)}
        for pid in rng.sample(range(1, 201), rng.randint(1, 2))
    ]
    body = {
        "items": items,
        "metodo_pago": "efectivo",
        "direccion_entrega": "Calle Bench 1",
        "telefono": "555-0100",
    }
    started = time.perf_counter()
    response = session.post(f"{base}/api/pedidos/", json=body, headers=headers, timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="fdfee28")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--orders", type=int, default=60, help="per server and round")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    # Stock no order can exhaust, every producto orderable.
    stock = "UPDATE productos SET stock = 1000000, activo = true"
    with base_beside_head(args.base, stock) as stage:
        common, trees, servers = stage.common, stage.trees, stage.servers
        clientes = tokens({**common, "CACHE_KEY_PREFIX": "tokens"}, list(range(2, 12)))
        for name, tree in trees.items():
            servers[name] = serve_for_measuring(
                stage.env(name, f"bench-{name}"), args.workers, tree=tree
            )
        env = stage.env("head", "bench-sin-outbox")  # head's code, head's database
        servers["sin-outbox"] = serve_for_measuring(
            env, args.workers, tree=ROOT, app="bench.sin_outbox:app"
        )
        print(f"load average before measuring: {os.getloadavg()}; {os.cpu_count()} cores")

        rng = random.Random(7)
        sessions = {name: requests.Session() for name in servers}
        for name, server in servers.items():
            for _ in range(WARM):
                order(sessions[name], server.url, rng.choice(clientes), rng)
        times: dict[str, list[float]] = {name: [] for name in servers}
        ratios: dict[str, list[float]] = {"head/sin-outbox": [], "head/base": []}
        names = list(servers)
        for r in range(args.rounds):
            got: dict[str, list[float]] = {name: [] for name in servers}
            for i in range(args.orders * len(names)):
                # Order by order, rotating (who goes first rotates too): the machine
                # is shared, so every server sees the same load.
                turn = (
                    names[(i // len(names)) % len(names) :]
                    + names[: (i // len(names)) % len(names)]
                )
                name = turn[i % len(names)]
                got[name].append(
                    order(sessions[name], servers[name].url, rng.choice(clientes), rng)
                )
            p50 = {}
            for name in servers:
                times[name] += got[name]
                p50[name] = statistics.median(got[name])
            ratios["head/sin-outbox"].append(p50["head"] / p50["sin-outbox"])
            ratios["head/base"].append(p50["head"] / p50["base"])
            print(
                f"  round {r + 1}: p50 base {p50['base'] * 1000:.2f} ms, "
                f"sin-outbox {p50['sin-outbox'] * 1000:.2f} ms, head {p50['head'] * 1000:.2f} ms; "
                + ", ".join(f"{k} {v[-1]:.3f}" for k, v in ratios.items())
            )
        time.sleep(1.0)  # the last order's rows go once its response was sent
        with psycopg.connect(libpq_url(stage.db_urls["head"]), autocommit=True) as conn:
            left = conn.execute(
                "SELECT count(*) FROM cache_pending WHERE prefix = 'bench-head'"
            ).fetchone()[0]
        assert left == 0, f"head left {left} outbox row(s)"

        def ms(values: list[float], q: float) -> float:
            return round(sorted(values)[int(q * (len(values) - 1))] * 1000, 2)

        results = {
            name: {"orders": len(v), "p50_ms": ms(v, 0.5), "p95_ms": ms(v, 0.95)}
            for name, v in times.items()
        }
        for label, values in ratios.items():
            results[f"ratio_p50 {label}"] = {
                "median_of_rounds": round(statistics.median(values), 3),
                "rounds": [round(x, 3) for x in values],
            }
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
