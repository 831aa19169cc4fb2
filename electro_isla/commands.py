"""Application CLI (`flask --app wsgi <command>`): users and demo data.

`create-user` makes a usuario with any role; `set-user` changes an existing one's
role or activation (the API lets nobody change their own).

`seed-demo` writes the rows of electro_isla/demo.py: built for volume, in bulk,
with COPY on PostgreSQL, so a million pedidos is a matter of a minute or two.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

import click
from flask import Blueprint
from marshmallow import ValidationError
from sqlalchemy import func, insert, select, text
from werkzeug.security import generate_password_hash

from electro_isla.auth.schemas import RegisterSchema
from electro_isla.cache import invalidate_after_commit
from electro_isla.cache.commands import CLEAR_ENDPOINT, warn_if_in_process
from electro_isla.catalogo.models import Producto
from electro_isla.cli import database_command
from electro_isla.db_types import money, utcnow
from electro_isla.demo import (
    CHUNK,
    DEMO_PASSWORD,
    DETALLE_COLS,
    PEDIDO_COLS,
    PRODUCTO_COLS,
    USUARIO_COLS,
    DemoGenerator,
    Periodo,
    ProductoDemo,
    month_start,
)
from electro_isla.extensions import db
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario, normalize_email, normalize_username
from electro_isla.usuarios.service import (
    UltimoAdmin,
    ajustar_usuario,
    crear_usuario,
    existe_usuario,
)

app_cli = Blueprint("app_cli", __name__, cli_group=None)

MIN_PASSWORD = 8
# The command's name for each field of the registration schema.
OPTION = {"username": "USERNAME", "email": "--email", "password": "--password"}
OPTION |= {"first_name": "--first-name", "last_name": "--last-name"}


# -- create-user ---------------------------------------------------------------


@app_cli.cli.command("create-user")
@click.argument("username")
@click.option("--email", required=True, help="Unique e-mail address.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help=f"At least {MIN_PASSWORD} characters (prompted when omitted).",
)
@click.option("--rol", type=click.Choice(ROLES), default="cliente", show_default=True)
@click.option("--first-name", default="", help="Given name.")
@click.option("--last-name", default="", help="Family name.")
@click.option(
    "--if-missing", is_flag=True, help="Do nothing (exit 0) when USERNAME already exists."
)
@database_command
def create_user(
    username: str,
    email: str,
    password: str,
    rol: str,
    first_name: str,
    last_name: str,
    if_missing: bool,
) -> None:
    """Create a usuario with any role (the API never lets anyone choose their own).

    Its fields pass the registration's schema, the API's rules for each: a 151-letter
    first name ended in a database traceback that printed the new password's hash."""
    if if_missing and existe_usuario(username=normalize_username(username.strip())):
        return
    given = {"username": username.strip(), "email": email, "password": password}
    given |= {"first_name": first_name, "last_name": last_name}
    try:
        datos = RegisterSchema().load(given)
    except ValidationError as exc:
        field, messages = next(iter(exc.normalized_messages().items()))
        raise click.BadParameter(" ".join(map(str, messages)), param_hint=OPTION[field]) from None
    username, email = datos["username"], normalize_email(datos["email"])
    if existe_usuario(username=username):
        raise click.ClickException(f"username {username!r} already exists")
    if existe_usuario(email=email):
        raise click.ClickException(f"e-mail {email!r} already belongs to another usuario")
    first_name, last_name = datos["first_name"], datos["last_name"]
    usuario = crear_usuario(username, email, password, rol, first_name, last_name)
    click.echo(f"Created usuario {usuario.username!r} (id {usuario.id}, rol {usuario.rol}).")


@app_cli.cli.command("set-user")
@click.argument("username")
@click.option("--rol", type=click.Choice(ROLES), help="The usuario's new role.")
@click.option("--active", "activar", is_flag=True, help="Reactivate the usuario.")
@click.option("--inactive", "desactivar", is_flag=True, help="Deactivate the usuario.")
@database_command
def set_user(username: str, rol: str | None, activar: bool, desactivar: bool) -> None:
    """Change an existing usuario's role or activation (an admin locked out gets back in)."""
    if activar and desactivar:  # a --active/--inactive pair let the last one win, silently
        raise click.UsageError("--active and --inactive contradict each other")
    activo = True if activar else False if desactivar else None
    if rol is None and activo is None:
        raise click.UsageError("say what to change: --rol, --active or --inactive")
    try:
        usuario = ajustar_usuario(username, rol, activo)
    except UltimoAdmin as exc:
        raise click.ClickException(str(exc)) from exc
    if usuario is None:
        raise click.ClickException(f"no usuario {username.strip()!r}")
    estado = "active" if usuario.is_active else "inactive"
    click.echo(f"Usuario {usuario.username!r} (id {usuario.id}): rol {usuario.rol}, {estado}.")
    # A running server's cached access (acceso_usuario, 60 s) then lags by up to that.
    warn_if_in_process(
        "this change invalidates only",
        "a running server sees it once its cached access expires (at most 60 s), "
        f"or at once after {CLEAR_ENDPOINT}",
    )


# -- seed-demo -----------------------------------------------------------------


def _un_usuario_por_rol(usuarios: list[tuple]) -> list[tuple[str, str]]:
    """(rol, username) of the first active demo usuario of each role, in ROLES order:
    the usernames are drawn per seed, and a new user otherwise has to find one."""
    rol, activo, username = (USUARIO_COLS.index(c) for c in ("rol", "is_active", "username"))
    primero: dict[str, str] = {}
    for u in usuarios:
        if u[activo]:
            primero.setdefault(u[rol], u[username])
    return [(r, primero[r]) for r in ROLES if r in primero]


SETVAL = (
    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
    "coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
)
VACUUM_DELTAS = "VACUUM estadisticas_pedidos_delta, estadisticas_productos_vendidos_delta"
# Whether the schema is at or past migration 0017 (the benchmarks seed older ones too).
AT_0017 = "SELECT to_regprocedure('estadisticas_tomar_filas(xid8)') IS NOT NULL"
# The fold, on such a schema.
FOLD_IF_0017 = """
DO $$ BEGIN
    IF to_regprocedure('estadisticas_tomar_filas(xid8)') IS NOT NULL THEN
        PERFORM estadisticas_plegar();
    END IF;
END $$"""


def _next_id(model: type) -> int:
    return (db.session.scalar(select(func.max(model.id))) or 0) + 1


def _insert(model: type, columns: Sequence[str], rows: list[tuple]) -> None:
    """Bulk insert through the ORM (the cache listeners see it), in chunks."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        db.session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in chunk])


def _write(model: type, columns: Sequence[str], rows: list[tuple], postgres: bool) -> None:
    """COPY on PostgreSQL (the fastest way in, in the session's transaction), else ORM bulk."""
    if not postgres:
        _insert(model, columns, rows)
        return
    raw = db.session.connection().connection.driver_connection
    copy_sql = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


@app_cli.cli.command("seed-demo")
@click.option(
    "--usuarios", "n_usuarios", default=60, show_default=True, type=click.IntRange(1, 10_000_000)
)
@click.option(
    "--productos", "n_productos", default=80, show_default=True, type=click.IntRange(1, 1_000_000)
)
@click.option(
    "--pedidos", "n_pedidos", default=3000, show_default=True, type=click.IntRange(0, 50_000_000)
)
@click.option(
    "--meses", default=12, show_default=True, type=click.IntRange(1, 120), help="Months of history."
)
@click.option(
    "--seed", type=int, default=None, help="Make the data reproducible (default: random)."
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has usuarios.")
@database_command
def seed_demo(
    n_usuarios: int, n_productos: int, n_pedidos: int, meses: int, seed: int | None, if_empty: bool
) -> None:
    """Fill the database with a realistic demo store (usuarios, productos, pedidos)."""
    if if_empty and db.session.scalar(select(Usuario.id).limit(1)) is not None:
        click.echo("seed-demo: the database already has usuarios; nothing to do.")
        return
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    hasta = utcnow().replace(second=0, microsecond=0)
    periodo = Periodo(month_start(hasta, meses - 1), hasta)
    generator = DemoGenerator(rng, periodo, generate_password_hash(DEMO_PASSWORD))
    postgres = db.session.get_bind().dialect.name == "postgresql"
    started = datetime.now(UTC)
    if postgres:
        # Ids are assigned here from max(id): writers wait until we commit (readers do not).
        db.session.execute(
            text("LOCK TABLE usuarios, productos, pedidos, detalles_pedido IN EXCLUSIVE MODE")
        )
        # Bulk mode (migration 0009): no row trigger per row (since 0017 an inserted row
        # is its own delta; before it, a statement trigger upserted the rollups).
        db.session.execute(text("SET LOCAL estadisticas.masivo = 'on'"))

    usuarios = generator.usuarios(_next_id(Usuario), n_usuarios)
    _insert(Usuario, USUARIO_COLS, usuarios)
    productos = generator.productos(_next_id(Producto), n_productos)
    _insert(Producto, PRODUCTO_COLS, productos)

    uid, rol, joined, telefono, direccion = (
        USUARIO_COLS.index(c) for c in ("id", "rol", "date_joined", "telefono", "direccion")
    )
    clientes = [
        (u[uid], u[joined], u[direccion], u[telefono]) for u in usuarios if u[rol] == "cliente"
    ]
    mensajeros = [u[uid] for u in usuarios if u[rol] == "mensajero"]
    catalogo = [ProductoDemo(p[0], p[1], money(p[3] * (100 - p[4]) / 100)) for p in productos]
    n_detalles = 0
    with click.progressbar(length=n_pedidos, label="pedidos", show_pos=True) as bar:
        chunks = generator.pedidos(
            _next_id(Pedido), _next_id(DetallePedido), n_pedidos, clientes, mensajeros, catalogo
        )
        for pedidos, detalles in chunks:
            _write(Pedido, PEDIDO_COLS, pedidos, postgres)
            _write(DetallePedido, DETALLE_COLS, detalles, postgres)
            n_detalles += len(detalles)
            bar.update(len(pedidos))

    if postgres:
        for table in ("usuarios", "productos", "pedidos", "detalles_pedido"):
            # Explicit ids were written: move each sequence past them.
            sql = SETVAL.format(table=table)
            db.session.execute(text(sql))
        # COPY is invisible to the ORM listeners.
        invalidate_after_commit(db.session, "usuarios", "productos", "pedidos", "detalles_pedido")
    db.session.commit()
    seconds = (datetime.now(UTC) - started).total_seconds()
    if postgres:
        # The new rows are their own statistics deltas (migration 0017): fold them now,
        # or the first statistics MISS reads them all.
        click.echo("seed-demo: folding the new rows into the statistics rollups...")
        db.session.execute(text(FOLD_IF_0017))
        db.session.commit()
        if db.session.scalar(text(AT_0017)):
            # The fold moved every new row through the delta tables: their heaps are all
            # dead rows, which a MISS would scan until autovacuum came by.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(VACUUM_DELTAS))
        # The planner's statistics still describe the database before the import: right
        # after a 10x import a statistics MISS seq-scanned whole rollups until autovacuum
        # came by (bench/historia.py: usuarios and reporte 1.55x the MISS before it).
        click.echo("seed-demo: refreshing the planner's statistics (ANALYZE)...")
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    click.echo(
        f"seed-demo: {n_usuarios} usuarios, {n_productos} productos, {n_pedidos} pedidos, "
        f"{n_detalles} detalles over {meses} months in {seconds:.1f} s (--seed {seed}). "
        f"Demo usuarios log in with password {DEMO_PASSWORD!r}."
    )
    ejemplos = _un_usuario_por_rol(usuarios)
    if ejemplos:
        click.echo("seed-demo: for instance " + ", ".join(f"{r}: {u}" for r, u in ejemplos))
