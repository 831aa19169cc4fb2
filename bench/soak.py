"""Soak: the dashboard mix for 10 minutes; worker memory must stay flat and nothing may fail.

    .venv/bin/python bench/soak.py [--minutes 10] [--pedidos 100000] [--json out.json]

Same servers, data and mix as bench/load.py (cache enabled). gunicorn's worker
recycling (max_requests) is switched off for the run, or a leak would be hidden
by workers being replaced. Worker RSS is sampled every 30 s; growth is measured
from the first sample after a 60 s warm-up to the last one. Targets: growth
< 10 % for every worker, zero errors (any non-2xx/3xx answer or no answer).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from load import (
    Mix,
    Recorder,
    cache_stats,
    db_counters,
    make_actors,
    reset_statements,
    rss_mb,
    shop_arguments,
    shop_server,
    start_database,
    summarise,
)

from electro_isla_testing.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent

WARMUP_SECONDS = 60
SAMPLE_SECONDS = 30


def main() -> int:
    parser = shop_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()

    pg, database_url = start_database(args.pedidos, args.seed)
    redis = RedisServer().start()
    server = shop_server(database_url, redis.url, GUNICORN_MAX_REQUESTS="0")
    try:
        actors = make_actors(database_url)
        server.start(timeout=60)
        pids = server.worker_pids()
        print(f"gunicorn workers: {pids}", flush=True)
        recorder = Recorder(measuring=True)
        mix = Mix(server.url, actors, recorder, shop=True)
        total = args.minutes * 60
        reset_statements(database_url)
        db_before = db_counters(database_url)
        started = time.monotonic()
        mix.start()
        samples: list[tuple[float, dict[int, float]]] = [(0.0, rss_mb(pids))]
        while (now := time.monotonic() - started) < total:
            time.sleep(min(SAMPLE_SECONDS, total - now))
            at = time.monotonic() - started
            samples.append((at, rss_mb(pids)))
            errors = sum(1 for s in recorder.samples if not (200 <= s.status < 400))
            print(
                f"  {at:6.0f} s  requests {len(recorder.samples):7d}  errors {errors}  "
                f"RSS MB {sorted(round(v, 1) for v in samples[-1][1].values())}",
                flush=True,
            )
        mix.halt()
        elapsed = time.monotonic() - started
        db_after = db_counters(database_url)
        stats = cache_stats(server.url, actors.staff[0])
        alive = server.worker_pids()
    finally:
        server.stop()
        redis.stop()
        pg.cleanup()

    baseline = next(rss for at, rss in samples if at >= WARMUP_SECONDS)
    final = samples[-1][1]
    growth = {
        pid: round(100 * (final[pid] - baseline[pid]) / baseline[pid], 1)
        for pid in baseline
        if pid in final
    }
    errors = [s for s in recorder.samples if not (200 <= s.status < 400)]
    endpoints = summarise(recorder.samples, elapsed)
    result = {
        "minutes": round(elapsed / 60, 1),
        "requests": len(recorder.samples),
        "throughput_rps": round(len(recorder.samples) / elapsed, 1),
        "errors": len(errors),
        "error_statuses": sorted({s.status for s in errors}),
        "workers_replaced": sorted(set(pids) - set(alive)),
        "rss_mb_after_warmup": {p: round(v, 1) for p, v in baseline.items()},
        "rss_mb_end": {p: round(v, 1) for p, v in final.items()},
        "rss_growth_pct": growth,
        "rss_samples": [(round(at), {p: round(v, 1) for p, v in r.items()}) for at, r in samples],
        "db_statements_per_s": round(
            db_after["statements"] / (db_after["at"] - db_before["at"]), 1
        ),
        "cache_hit_ratio": stats.get("hit_ratio"),
        "endpoints": endpoints,
    }
    worst = max(growth.values()) if growth else float("nan")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=1))
    print(
        f"\nworst worker RSS growth {worst} % (target < 10 %): {'MET' if worst < 10 else 'MISSED'}; "
        f"errors {len(errors)} (target 0): {'MET' if not errors else 'MISSED'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if worst < 10 and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
