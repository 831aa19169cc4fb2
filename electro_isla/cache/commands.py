"""Cache CLI: `flask cache-stats [--json]`, `flask cache-clear [--pattern]`, `flask cache-warm`.

`cache-warm` runs every registered warmer. The cache names no domain: each
domain registers its own with `@warmer("name")` when it is imported (the
statistics from their table, estadisticas/registro.py; the first product page
in catalogo/views.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import click
from flask import Blueprint

from electro_isla.cache import CacheUnavailable, cache_manager, signals
from electro_isla.cache.schemas import CacheClearArgsSchema
from electro_isla.cli import database_message

log = logging.getLogger("electro_isla.cache")

cache_cli = Blueprint("cache_cli", __name__, cli_group=None)

Warmer = Callable[[], Any]

# name -> a function called with no arguments inside the app context.
WARMERS: dict[str, Warmer] = {}


def warmer(name: str) -> Callable[[Warmer], Warmer]:
    """Register `func` as the warmer of `name` (replacing any earlier one)."""

    def decorator(func: Warmer) -> Warmer:
        WARMERS[name] = func
        return func

    return decorator


CLEAR_ENDPOINT = "POST /api/admin/cache/clear/"


def warn_if_in_process(what: str, advice: str | None = None) -> None:
    """One stderr line when the cache lives in this CLI process (no REDIS_URL).

    A command runs in its own process: with the in-process cache it reads,
    clears or fills only its own, empty cache, never a running server's, and
    would otherwise report "deleted 0" as if there was nothing to delete.
    """
    if cache_manager.store.shared:
        return
    advice = advice or f"use {CLEAR_ENDPOINT} (admin) to clear a running server's"
    click.echo(
        f"warning: the cache is in-process (no REDIS_URL): {what} this process's own cache,"
        f" not a running server's; {advice}",
        err=True,
    )


def run_warmers() -> list[dict[str, Any]]:
    """Run every warmer; one result per name: computed, cached, missing or failed
    (missing: what is registered under the name is not a function)."""
    results = []
    for name, target in WARMERS.items():
        fetched: list[str] = []

        def on_fetch(_sender: Any, fetched: list[str] = fetched, **kw: Any) -> None:
            fetched.append(kw["name"])

        started = time.perf_counter()
        if not callable(target):
            results.append({"name": name, "status": "missing", "detail": f"{target!r}"})
            continue
        try:
            with signals.cache_fetch.connected_to(on_fetch):
                target()
        except Exception as exc:  # noqa: BLE001  one broken warmer must not stop the rest
            # A database's sentence, else the exception's type: its text may quote SQL.
            log.warning("warmer %s failed", name, exc_info=True)
            detail = database_message(exc) or type(exc).__name__
            results.append({"name": name, "status": "failed", "detail": detail})
            continue
        results.append(
            {
                "name": name,
                "status": "computed" if fetched else "cached",
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    return results


@cache_cli.cli.command("cache-stats")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON document.")
def cache_stats(as_json: bool) -> None:
    """Show cache hits, misses, fetches and invalidations (all workers)."""
    warn_if_in_process("these figures are from")
    stats = cache_manager.get_stats()
    if as_json:
        click.echo(json.dumps(stats, indent=2, sort_keys=True))
    else:
        show_stats(stats)
    if stats["circuit_open"]:  # as cache-clear and cache-warm: a script sees the outage
        raise click.ClickException("the cache server is not answering: these are not its figures")


def show_stats(stats: dict[str, Any]) -> None:
    """The stats as the table an operator reads."""
    click.echo(f"backend        {stats['backend']}")
    click.echo(f"hit ratio      {stats['hit_ratio']:.2%}")
    for field in ("hits", "misses", "fetches", "invalidations", "errors"):
        click.echo(f"{field:<14} {stats[field]}")
    click.echo(f"last updated   {stats['last_updated'] or '-'}")
    click.echo(f"circuit        {'open' if stats['circuit_open'] else 'closed'}")
    click.echo(f"pending inval. {stats['pending_invalidations']}")
    click.echo("")
    header = f"{'name':<24}{'ttl':>6}{'hits':>9}{'misses':>9}{'fetches':>9}{'inval.':>9}"
    click.echo(header)
    click.echo("-" * len(header))
    for name, fam in sorted(stats["families"].items()):
        click.echo(
            f"{name:<24}{stats['ttl'][name]:>6}{fam['hits']:>9}{fam['misses']:>9}"
            f"{fam['fetches']:>9}{fam['invalidations']:>9}"
        )


@cache_cli.cli.command("cache-clear")
@click.option(
    "--pattern",
    default="*",
    show_default=True,
    help="Glob over <name>[:<row>], e.g. 'producto:*' or 'estadisticas_*' (no key prefix).",
)
def cache_clear(pattern: str) -> None:
    """Delete this app's cached entries (never counters, revocations or foreign keys)."""
    # The API's rule (POST /api/admin/cache/clear/): '' or '{' is no glob.
    errors = CacheClearArgsSchema().validate({"pattern": pattern})
    if errors:
        raise click.BadParameter(" ".join(errors["pattern"]), param_hint="--pattern")
    warn_if_in_process("this clears only")
    try:
        deleted = cache_manager.invalidate_pattern(pattern)
    except CacheUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"deleted {deleted} cached entr{'y' if deleted == 1 else 'ies'} ({pattern})")


@cache_cli.cli.command("cache-warm")
def cache_warm() -> None:
    """Compute the statistics and the first product page into the cache."""
    warn_if_in_process("this warms only")
    if not cache_manager.ping():
        raise click.ClickException("the cache server is not answering; nothing warmed")
    results = run_warmers()
    for r in results:
        extra = f"{r['seconds']:.3f}s" if "seconds" in r else r.get("detail", "")
        click.echo(f"{r['name']:<24}{r['status']:<10}{extra}")
    if any(r["status"] == "failed" for r in results):
        raise click.ClickException("some warmers failed")
