"""A base commit's app beside this tree's, in two worker processes: the in-process A/B driver.

bench/estadisticas_ab.py and bench/hit_ab.py run their own file once per tree as
`--worker DB_URL REDIS_URL`, the tree first on PYTHONPATH, and talk to each worker
one line at a time. Each tree gets its own database, migrated by its own
migrations and seeded by its own `flask seed-demo` with the same arguments
(electro_isla_testing/trees.py): the schema moves between commits (0008 replaced
tables 3e70ac8's statistics read). Imported by the benches' main() only, never
at the top: a worker runs the bench's file with a base tree first on the path.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from miss import ADMIN_USERNAME  # bench/miss.py, beside this file

from electro_isla_testing.databases import libpq_url
from electro_isla_testing.servers import PostgresServer, RedisServer
from electro_isla_testing.trees import ROOT, exported, tree_database


@dataclass
class Worker:
    """One tree's worker process: a line in, a line of words out."""

    proc: subprocess.Popen

    def ask(self, line: str) -> list[str]:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()


@contextmanager
def workers_beside(
    script: str, base: str, database: str, seed: Sequence[str], *, vacuum: bool = False
) -> Iterator[tuple[dict[str, Worker], str]]:
    """`script`'s worker for `base` and for this tree, each ready on its own database.

    `seed` is the `flask` command line both trees seed with (plus ADMIN_USERNAME, an
    admin); `vacuum` runs VACUUM ANALYZE after it. Yields the workers ("base",
    "head") and the one Redis's URL; stops everything on leaving.
    """
    pg, redis = PostgresServer(), RedisServer().start()
    procs: dict[str, subprocess.Popen] = {}
    try:
        pg.start()
        with exported(base) as base_tree:
            try:
                urls = {}
                for key, tree in {"base": base_tree, "head": ROOT}.items():
                    started = time.perf_counter()
                    urls[key] = tree_database(
                        pg, f"{database}_{key}", tree, redis.url, cli=seed, admin=ADMIN_USERNAME
                    )
                    if vacuum:
                        with psycopg.connect(libpq_url(urls[key]), autocommit=True) as conn:
                            conn.execute("VACUUM ANALYZE")
                    took = time.perf_counter() - started
                    print(f"# {key}: `{' '.join(seed)}` by its own code in {took:.1f} s")
                for key, tree in {"base": base_tree, "head": ROOT}.items():
                    procs[key] = subprocess.Popen(
                        [sys.executable, script, "--worker", urls[key], redis.url],
                        cwd=tree,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                    )
                    assert procs[key].stdout.readline().strip() == "ready", key
                yield {key: Worker(proc) for key, proc in procs.items()}, redis.url
            finally:
                for proc in procs.values():
                    proc.stdin.close()
                    proc.wait(timeout=60)
    finally:
        redis.stop()
        pg.cleanup()


def interleaved(
    workers: Iterable[str], items: Sequence[str], reps: int
) -> Iterator[tuple[str, str]]:
    """(worker, item) pairs: rep by rep, item by item, the workers in a shuffled order
    (seeded), so drift on the shared machine hits both trees alike."""
    rng = random.Random(17)
    for _ in range(reps):
        for item in items:
            order = list(workers)
            rng.shuffle(order)
            for key in order:
                yield key, item
