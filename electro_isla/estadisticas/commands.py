"""Statistics CLI: `flask estadisticas-check` and `flask estadisticas-rebuild`."""

from __future__ import annotations

import click
from flask import Blueprint

from electro_isla.cache.commands import warn_if_in_process
from electro_isla.estadisticas import operaciones

estadisticas_cli = Blueprint("estadisticas_cli", __name__, cli_group=None)


@estadisticas_cli.cli.command("estadisticas-check")
def estadisticas_check() -> None:
    """Recompute every statistic from the raw rows; exit 1 listing what differs."""
    warn_if_in_process("the endpoint comparison reads the cache of")
    found = operaciones.check()
    if found:
        for line in found:
            click.echo(line)
        raise click.ClickException(
            f"{len(found)} difference(s); `flask estadisticas-rebuild` recomputes the rollups "
            "(then `flask cache-clear` if only the cache differs)"
        )
    click.echo("estadisticas-check: every figure equals the raw-row computation")


@estadisticas_cli.cli.command("estadisticas-rebuild")
def estadisticas_rebuild() -> None:
    """Rebuild the statistics rollups from the raw rows, in one transaction."""
    written = operaciones.rebuild()
    for table, rows in written.items():
        click.echo(f"{table:<36}{rows:>10} rows")
    click.echo("estadisticas-rebuild: done")


@estadisticas_cli.cli.command("estadisticas-plegar")
def estadisticas_plegar() -> None:
    """Fold the committed statistics deltas into the rollups (PostgreSQL; writers fold
    on their own in READ COMMITTED, this is for REPEATABLE READ workloads)."""
    moved = operaciones.plegar()
    click.echo(f"estadisticas-plegar: {moved} delta rows folded")
