"""Benchmark: live statistics (waits + streams) vs dashboards polling every 3 s.

    .venv/bin/python bench/live.py [--seconds 60] [--watchers 200] [--dashboards 20]

One command, one run, everything side by side. Starts private PostgreSQL and
Redis servers and gunicorn with the project's gunicorn.conf.py (3 gthread
workers, LIVE_MAX_WAITERS=120 each), seeds 12 products and 50 staff usuarios,
then:

1. quiet polling: `--dashboards` dashboards GET the four statistics every 3 s, no orders;
2. busy polling: the same under 5 orders/s — latency p95 busy vs quiet, and server CPU;
3. live: `--watchers` watchers (half conditional waits spread over the four
   statistics, half event streams) under the same 5 orders/s — commit-to-client
   latency of each order (from the POST's answer, i.e. just after its COMMIT, to
   the moment a watcher holds a `reporte` counting it), fetches per change per
   statistic (cache stats `fetches` / orders), and server CPU per minute;
4. `GET /api/productos/7/` throughput with the watchers connected vs none;
5. a statistics HIT (`reporte`) vs `GET /api/perfil/` throughput.

The watchers run on one selectors loop in a child process
(electro_isla_testing/watchers.py), so the client costs little of the cores it
shares with the server it measures; its CPU (that process and this one) is printed.

Server CPU = user+system time of the gunicorn workers, redis-server and the
PostgreSQL processes alive at both ends of the phase (a backend that exits
mid-phase is not counted; the pool keeps them alive).
"""

from __future__ import annotations

import argparse
import os
import time

from live_load import (
    Meter,
    cache_fetches,
    dashboards,
    latencies_of,
    ms,
    orders,
    pct,
    staff_headers,
    throughput,
)

from electro_isla_testing.databases import create_database
from electro_isla_testing.gunicorn import GunicornServer
from electro_isla_testing.live import STATS, seed
from electro_isla_testing.servers import PostgresServer, RedisServer
from electro_isla_testing.watchers import Spec, Watchers


def watched_stat(i: int) -> str:
    """The statistic the i-th conditional wait holds: half of them reporte."""
    return "reporte" if i % 2 == 0 else STATS[i % 4]


def connect(site, staff: list, n: int) -> tuple[Watchers, int]:  # noqa: ANN001
    """n watchers: half conditional waits (half of them on reporte), half streams.

    Returns the watchers once every wait holds a tag and every stream its first
    events, and how many streams were refused.
    """
    half = n // 2
    tokens = [h["Authorization"] for h in staff]
    specs = [Spec(tokens[i % len(tokens)], watched_stat(i)) for i in range(half)]
    specs += [Spec(tokens[i % len(tokens)]) for i in range(n - half)]
    watchers = Watchers(site.base)
    refused = watchers.connect(specs)
    time.sleep(1)
    return watchers, refused


def disconnect(watchers: Watchers) -> None:
    watchers.close()
    time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--dashboards", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--throughput-seconds", type=float, default=10)
    args = parser.parse_args()

    pg = PostgresServer()
    pg.start()
    redis = RedisServer().start()
    server = None
    try:
        url = create_database(pg, "bench_live")
        server = GunicornServer(url, redis.url, workers=3, threads=None, use_project_config=True)
        server.env.update(
            LIVE_MAX_WAITERS="120",
            GUNICORN_MAX_REQUESTS="0",
            GUNICORN_ACCESS_LOG="/dev/null",
            GUNICORN_LOG_LEVEL="warning",
        )
        server.start()
        site = seed(url, server.url, productos=12)
        staff = staff_headers(url, 50)
        meter = Meter(server, redis, pg)
        report: dict[str, object] = {}

        # 1-2. polling, quiet then busy
        for phase in ("quiet", "busy"):
            lat: list[float] = []
            log: list = []
            meter.start()
            threads = dashboards(site, args.dashboards, args.seconds, lat)
            if phase == "busy":
                threads.append(orders(site, args.seconds, args.rate, log))
            for t in threads:
                t.join()
            report[f"poll_{phase}_cpu"] = meter.per_minute()
            report[f"poll_{phase}_p95"] = pct(lat, 0.95)
            report[f"poll_{phase}_p50"] = pct(lat, 0.5)
            report[f"poll_{phase}_requests"] = len(lat)

        detail = f"{site.base}/api/productos/{site.producto_ids[6]}/"
        without, with_ = [throughput(detail, {}, args.throughput_seconds)], []

        # 3. live watchers under orders
        watchers, refused = connect(site, staff, args.watchers)
        # 4. ordinary throughput with the watchers connected (vs none, measured above)
        with_.append(throughput(detail, {}, args.throughput_seconds))
        base_total = site.stat("reporte").json()["resumen"]["total_pedidos"]
        fetches_before = cache_fetches(site)
        log = []
        watchers.mark()
        meter.start()
        client_cpu = time.process_time()
        orders(site, args.seconds, args.rate, log).join()
        time.sleep(2)
        report["live_cpu"] = meter.per_minute()
        per_minute = 60 / (args.seconds + 2)
        report["live_client_cpu"] = (time.process_time() - client_cpu) * per_minute
        sightings, immediate, watchers_cpu = watchers.report()
        report["live_watchers_cpu"] = watchers_cpu * per_minute
        fetches_after = cache_fetches(site)
        from_answer, from_sent, missed = latencies_of(log, base_total, sightings)
        # report() lists the reporte waits first (connect()'s order), then the streams.
        waits = sum(1 for i in range(args.watchers // 2) if watched_stat(i) == "reporte")
        by_wait = latencies_of(log, base_total, sightings[:waits])[0]
        by_stream = latencies_of(log, base_total, sightings[waits:])[0]
        report.update(
            orders=len(log),
            watchers_reporte=len(sightings),
            stream_refused=refused,
            wait_immediate=immediate,
            lat_p50=pct(from_answer, 0.5),
            lat_p95=pct(from_answer, 0.95),
            lat_max=max(from_answer, default=float("nan")),
            lat_sent_p95=pct(from_sent, 0.95),
            lat_waits=(pct(by_wait, 0.5), pct(by_wait, 0.95)),
            lat_streams=(pct(by_stream, 0.5), pct(by_stream, 0.95)),
            missed=missed,
            fetches={s: (fetches_after[s] - fetches_before[s]) / max(1, len(log)) for s in STATS},
        )
        disconnect(watchers)
        # A second round, so that drift on a shared machine hits both sides alike.
        without.append(throughput(detail, {}, args.throughput_seconds))
        watchers, _ = connect(site, staff, args.watchers)
        with_.append(throughput(detail, {}, args.throughput_seconds))
        disconnect(watchers)
        report["detail_with"], report["detail_without"] = with_, without

        # 5. statistics HIT vs perfil
        hit = throughput(
            f"{site.base}/api/admin/estadisticas/reporte/", site.admin, args.throughput_seconds
        )
        perfil = throughput(f"{site.base}/api/perfil/", site.admin, args.throughput_seconds)
        report["stat_hit"], report["perfil"] = hit, perfil
        print_report(report, args)
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        pg.cleanup()


def print_report(r: dict, args: argparse.Namespace) -> None:  # noqa: ANN001
    print(f"\n== load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    print(
        f"== bench/live.py  seconds={args.seconds} watchers={args.watchers} "
        f"dashboards={args.dashboards} orders/s={args.rate}"
    )
    print(
        f"live: {r['orders']} orders, {r['watchers_reporte']} watchers holding reporte "
        f"(streams refused: {r['stream_refused']}, waits answered at once: {r['wait_immediate']})"
    )
    print(
        f"  commit-to-client latency (from the POST's answer) p50 {ms(r['lat_p50'])} ms, "
        f"p95 {ms(r['lat_p95'])} ms, max {ms(r['lat_max'])} ms  (target p95 <= 100 ms); "
        f"from the POST sent p95 {ms(r['lat_sent_p95'])} ms; missed {r['missed']}"
    )
    (wait50, wait95), (stream50, stream95) = r["lat_waits"], r["lat_streams"]
    print(
        f"  by kind: waits p50 {ms(wait50)} / p95 {ms(wait95)} ms, "
        f"streams p50 {ms(stream50)} / p95 {ms(stream95)} ms"
    )
    fetches = ", ".join(f"{s} {v:.2f}" for s, v in r["fetches"].items())
    print(f"  fetches per change per statistic: {fetches}  (target 1)")
    print(
        f"  server CPU per minute: live {r['live_cpu']:.1f} s vs {args.dashboards} dashboards "
        f"polling every 3 s {r['poll_busy_cpu']:.1f} s (quiet polling {r['poll_quiet_cpu']:.1f} s);"
        f" per client {r['live_cpu'] / args.watchers:.2f} vs "
        f"{r['poll_busy_cpu'] / args.dashboards:.2f} s; the client used "
        f"{r['live_watchers_cpu'] + r['live_client_cpu']:.1f} s/min of the same cores during "
        f"the live phase (watchers' process {r['live_watchers_cpu']:.1f}, orders and "
        f"bench {r['live_client_cpu']:.1f})"
    )
    with_, without = r["detail_with"], r["detail_without"]
    ratio = sum(with_) / sum(without)
    print(
        f"GET /api/productos/7/ req/s, {args.watchers} watchers connected / none, 2 rounds: "
        f"{' / '.join(f'{a:.0f}' for a in with_)} vs {' / '.join(f'{b:.0f}' for b in without)}"
        f" = {ratio:.2f}x  (target >= 0.9x)"
    )
    busy = r["poll_busy_p95"] / r["poll_quiet_p95"]
    print(
        f"polling mix: p95 busy {ms(r['poll_busy_p95'])} ms vs quiet {ms(r['poll_quiet_p95'])} ms"
        f" = {busy:.2f}x  (target <= 2x); p50 {ms(r['poll_busy_p50'])} vs "
        f"{ms(r['poll_quiet_p50'])} ms; {r['poll_busy_requests']} / {r['poll_quiet_requests']} GETs"
    )
    print(
        f"statistics HIT {r['stat_hit']:.0f} req/s vs GET /api/perfil/ {r['perfil']:.0f} req/s"
        f" = {r['stat_hit'] / r['perfil']:.2f}x  (target >= 0.95x)"
    )


if __name__ == "__main__":
    main()
