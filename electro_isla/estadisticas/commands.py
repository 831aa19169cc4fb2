"""Statistics CLI: `flask estadisticas-check` and `flask estadisticas-rebuild`."""

from __future__ import annotations

import click
from flask import Blueprint

from electro_isla.cache.commands import warn_if_in_process
from electro_isla.cli import database_command
from electro_isla.estadisticas import operaciones

estadisticas_cli = Blueprint("estadisticas_cli", __name__, cli_group=None)


@estadisticas_cli.cli.command("estadisticas-check")
@database_command
def estadisticas_check() -> None:
    """Recompute every statistic from the raw rows; exit 1 listing what differs."""
    warn_if_in_process("the endpoint comparison reads")
    found = operaciones.check()
    for line in found.rollups + found.endpoints:
        click.echo(line)
    if found.rollups:
        raise click.ClickException(
            f"{len(found.rollups + found.endpoints)} difference(s); the rollups differ from "
            "the raw rows: `flask estadisticas-rebuild` recomputes them (writers wait for it)"
        )
    if found.endpoints:
        raise click.ClickException(
            f"{len(found.endpoints)} difference(s); the rollups equal the raw rows, the "
            "cached answers do not: `flask cache-clear` drops them"
        )
    if found.unsettled:  # not verified: a script reading the exit code must not think so
        raise click.ClickException(
            f"not compared: {', '.join(found.unsettled)} (writes changed the figures during "
            f"each of {operaciones.ATTEMPTS} reads); the rest equals the raw-row computation; "
            "run the check again when the shop is quieter"
        )
    click.echo("estadisticas-check: every figure equals the raw-row computation")


@estadisticas_cli.cli.command("estadisticas-rebuild")
@database_command
def estadisticas_rebuild() -> None:
    """Rebuild the statistics rollups from the raw rows, in one transaction."""
    # Its invalidation after COMMIT reaches this process's cache only: a running
    # server without Redis kept answering the drifted figures until their TTL.
    warn_if_in_process("the rebuild's invalidation reaches")
    written = operaciones.rebuild()
    for table, rows in written.items():
        click.echo(f"{table:<36}{rows:>10} rows")
    click.echo("estadisticas-rebuild: done")


@estadisticas_cli.cli.command("estadisticas-plegar")
@database_command
def estadisticas_plegar() -> None:
    """Fold the committed statistics deltas into the rollups (PostgreSQL; writers fold
    on their own in READ COMMITTED, this is for REPEATABLE READ workloads)."""
    moved = operaciones.plegar()
    click.echo(f"estadisticas-plegar: {moved} rows folded (deltas, new pedidos and lines)")
