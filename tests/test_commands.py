"""The application CLI: create-user, set-user and seed-demo, on the real PostgreSQL test database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import func, select, text

from electro_isla.cache import cache_manager
from electro_isla.catalogo.models import CATEGORIAS, Producto
from electro_isla.demo import DEMO_PASSWORD
from electro_isla.pedidos.models import DetallePedido, Pedido
from electro_isla.usuarios.models import ROLES, Usuario
from electro_isla_testing.factories import UsuarioFactory, auth_headers

SMALL = ["--usuarios", "20", "--productos", "30", "--pedidos", "200"]
FROZEN = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


def invoke(runner, *args: str):
    return runner.invoke(args=list(args))


def count(db, model) -> int:
    db.session.rollback()  # see what the CLI committed
    return db.session.scalar(select(func.count()).select_from(model))


# -- create-user -----------------------------------------------------------------


def test_create_user(runner, db):
    result = invoke(
        runner, "create-user", "jefa", "--email", "jefa@example.com",
        "--password", "muy-secreta", "--rol", "admin", "--first-name", "Ana",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "jefa" in result.output
    usuario = db.session.scalar(select(Usuario).where(Usuario.username == "jefa"))
    assert usuario.rol == "admin"
    assert usuario.email == "jefa@example.com"
    assert usuario.first_name == "Ana"
    assert usuario.is_active
    assert usuario.check_password("muy-secreta")
    assert "muy-secreta" not in usuario.password_hash


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--rol", "jefe", "--password", "12345678", "--email", "a@b.cu"], "--rol"),
        (["--rol", "admin", "--password", "1234567", "--email", "a@b.cu"], "--password"),
        (["--rol", "admin", "--password", "12345678", "--email", "no-es-correo"], "--email"),
        (["--rol", "admin", "--password", "12345678"], "--email"),
        # The HMAC pads with zeros: it would also let "12345678" in.
        (["--rol", "admin", "--password", "12345678\x00", "--email", "a@b.cu"], "--password"),
        # Only spaces: refused by the API's registration, so here too.
        (["--password", " " * 8, "--email", "a@b.cu"], "--password"),
        # A DBA's probe: a database traceback printing the password's hash.
        (
            ["--password", "12345678", "--email", "a@b.cu", "--first-name", "x" * 151],
            "--first-name",
        ),
        (["--password", "12345678", "--email", "a@b.cu", "--last-name", "\x00"], "--last-name"),
    ],
)
def test_create_user_rejects_bad_input(runner, db, args, hint):
    result = invoke(runner, "create-user", "nuevo", *args)
    assert result.exit_code == 2, result.output
    assert hint in result.output
    # click's usage error, not a database error (whose traceback printed the hash)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert count(db, Usuario) == 0


def test_create_user_rejects_duplicates(runner, db):
    UsuarioFactory(username="pepe", email="pepe@example.com")
    result = invoke(
        runner, "create-user", "pepe", "--email", "otro@example.com", "--password", "12345678"
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    result = invoke(
        runner, "create-user", "otro", "--email", "PEPE@example.com", "--password", "12345678"
    )
    assert result.exit_code == 1
    assert "e-mail" in result.output
    assert count(db, Usuario) == 1


def test_create_user_normalises_the_username_like_the_api(runner, db):
    """NFKC, as registration does: a full-width "ａna" is the "ana" that exists already."""
    UsuarioFactory(username="ana", email="ana@example.com")
    result = invoke(
        runner, "create-user", "\uff41na", "--email", "otro@example.com", "--password", "12345678"
    )
    assert result.exit_code == 1, result.output
    assert "already exists" in result.output
    assert count(db, Usuario) == 1


def test_create_user_if_missing(runner, db):
    UsuarioFactory(username="admin", email="admin@example.com", rol="admin", password="original-1")
    result = invoke(
        runner, "create-user", "admin", "--email", "x@example.com",
        "--password", "cambiada-2", "--rol", "admin", "--if-missing",
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.output == ""
    db.session.rollback()
    admin = db.session.scalar(select(Usuario).where(Usuario.username == "admin"))
    assert admin.check_password("original-1")  # untouched
    assert count(db, Usuario) == 1

    result = invoke(
        runner, "create-user", "nueva", "--email", "nueva@example.com",
        "--password", "12345678", "--rol", "trabajador", "--if-missing",
    )  # fmt: skip
    assert result.exit_code == 0
    assert count(db, Usuario) == 2


# -- set-user --------------------------------------------------------------------


def estado(db, username: str) -> tuple[str, bool]:
    db.session.rollback()  # see what the CLI committed
    usuario = db.session.scalar(select(Usuario).where(Usuario.username == username))
    return usuario.rol, usuario.is_active


def test_set_user_lets_an_operator_back_in(app, runner, db):
    """The only admin deactivated (by hand in the database, or by a since-fixed bug):
    nothing in the API can undo it, and create-user --if-missing leaves it as it is."""
    jefa = UsuarioFactory(username="Jefa", rol="admin", is_active=False)
    headers = auth_headers(app, jefa.id)
    client = app.test_client()
    assert client.get("/api/perfil/", headers=headers).status_code == 401
    result = invoke(runner, "set-user", "jefa", "--active")  # any case, as at login
    assert result.exit_code == 0, result.output
    assert "rol admin, active" in result.output
    assert estado(db, "Jefa") == ("admin", True)
    assert client.get("/api/perfil/", headers=headers).status_code == 200


def test_set_user_changes_the_role_and_access_follows_at_once(app, runner, db):
    UsuarioFactory(username="jefa", rol="admin")
    pepe = UsuarioFactory(username="pepe", rol="cliente")
    headers = auth_headers(app, pepe.id)
    client = app.test_client()
    assert client.get("/api/admin/users/", headers=headers).status_code == 403
    assert invoke(runner, "set-user", "pepe", "--rol", "trabajador").exit_code == 0
    assert client.get("/api/admin/users/", headers=headers).status_code == 200  # not cached
    assert invoke(runner, "set-user", "pepe", "--inactive").exit_code == 0
    assert estado(db, "pepe") == ("trabajador", False)
    assert client.get("/api/admin/users/", headers=headers).status_code == 401


def test_set_user_keeps_the_last_active_admin(runner, db):
    UsuarioFactory(username="jefa", rol="admin")
    for args in (["--inactive"], ["--rol", "trabajador"]):
        result = invoke(runner, "set-user", "jefa", *args)
        assert result.exit_code == 1
        assert "last active admin" in result.output
        assert estado(db, "jefa") == ("admin", True)
    UsuarioFactory(username="otra", rol="admin")
    assert invoke(runner, "set-user", "jefa", "--rol", "trabajador").exit_code == 0
    assert estado(db, "jefa") == ("trabajador", True)


def test_set_user_says_a_running_servers_in_process_cache_is_not_reached(sqlite_app):
    """No REDIS_URL: the CLI's commit invalidates its own, empty cache; a running
    server keeps its cached access (acceso_usuario) until it expires."""
    with sqlite_app.app_context():
        UsuarioFactory(username="pepe", rol="cliente")
    result = sqlite_app.test_cli_runner().invoke(args=["set-user", "pepe", "--inactive"])
    assert result.exit_code == 0, result.output
    assert "rol cliente, inactive" in result.stdout
    assert "in-process" in result.stderr and "only this process's own cache" in result.stderr
    assert "at most 60 s" in result.stderr  # what README says it says (an operator's probe)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nadie", "--active"], 1, "no usuario 'nadie'"),
        (["jefa"], 2, "say what to change"),
        (["jefa", "--rol", "jefe"], 2, "Invalid value for '--rol'"),
        # An operator's probe: the pair was accepted and the last flag won (inactive).
        (["jefa", "--active", "--inactive"], 2, "contradict each other"),
    ],
)
def test_set_user_rejects_bad_input(runner, db, args, code, message):
    UsuarioFactory(username="jefa", rol="admin")
    result = invoke(runner, "set-user", *args)
    assert result.exit_code == code
    assert message in result.output
    assert estado(db, "jefa") == ("admin", True)


# -- seed-demo -------------------------------------------------------------------


def digest(db) -> str:
    """Every seeded value except password hashes (salted on purpose)."""
    db.session.rollback()
    h = hashlib.sha256()
    for model in (Usuario, Producto, Pedido, DetallePedido):
        columns = [c for c in model.__table__.columns if c.name != "password_hash"]
        for row in db.session.execute(select(*columns).order_by(model.id)):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def truncate(db) -> None:
    db.session.rollback()
    db.session.execute(
        text("TRUNCATE detalles_pedido, pedidos, productos, refresh_tokens, usuarios "
             "RESTART IDENTITY CASCADE")
    )  # fmt: skip
    db.session.commit()


def test_seed_demo_names_an_active_usuario_of_each_role_that_logs_in(runner, db, client):
    """The demo usernames are drawn per seed: a new user had to ask the admin API for one
    (a new user's probe)."""
    result = invoke(runner, "seed-demo", *SMALL, "--seed", "3")
    assert result.exit_code == 0, result.output + repr(result.exception)
    line = next(x for x in result.output.splitlines() if x.startswith("seed-demo: for instance"))
    named = dict(p.split(": ") for p in line.removeprefix("seed-demo: for instance ").split(", "))
    assert set(named) <= set(ROLES) and {"cliente", "mensajero"} <= set(named)
    for rol, username in named.items():
        answer = client.post(
            "/api/auth/login/", json={"username": username, "password": DEMO_PASSWORD}
        )
        assert answer.status_code == 200, (username, answer.get_json())
        assert answer.get_json()["user"]["rol"] == rol


def test_seed_demo_creates_consistent_data(runner, db):
    with time_machine.travel(FROZEN, tick=False):
        result = invoke(runner, "seed-demo", *SMALL, "--seed", "3")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "200 pedidos" in result.output
    assert (count(db, Usuario), count(db, Producto), count(db, Pedido)) == (20, 30, 200)

    s = db.session
    # Every total is exactly the sum of its lines; every line is price x quantity.
    mismatched = s.scalar(
        select(func.count())
        .select_from(Pedido)
        .where(
            Pedido.total
            != select(func.sum(DetallePedido.subtotal))
            .where(DetallePedido.pedido_id == Pedido.id)
            .scalar_subquery()
        )
    )
    assert mismatched == 0
    lines = s.execute(select(DetallePedido.precio_unitario, DetallePedido.cantidad,
                             DetallePedido.subtotal)).all()  # fmt: skip
    assert all(pu * c == sub for pu, c, sub in lines)
    assert all(isinstance(sub, Decimal) for _, _, sub in lines)
    per_pedido = s.execute(
        select(DetallePedido.pedido_id, func.count(), func.count(func.distinct(DetallePedido.producto_id)))
        .group_by(DetallePedido.pedido_id)
    ).all()  # fmt: skip
    assert len(per_pedido) == 200
    assert all(1 <= n <= 4 and n == distinct for _, n, distinct in per_pedido)

    # Spread over the last 12 calendar months, never in the future.
    created = s.scalars(select(Pedido.created_at)).all()
    assert min(created) >= datetime(2025, 7, 1, tzinfo=UTC)
    assert max(created) <= FROZEN
    assert len({(c.year, c.month) for c in created}) >= 10
    joined = s.scalars(select(Usuario.date_joined)).all()
    assert len({(j.year, j.month) for j in joined}) >= 6
    late = s.scalar(
        select(func.count()).select_from(Pedido).join(Usuario, Usuario.id == Pedido.usuario_id)
        .where(Usuario.date_joined > Pedido.created_at)
    )  # fmt: skip
    assert late == 0

    # Every category, stock never negative, some out of stock, some low, some withdrawn.
    productos = s.execute(select(Producto.categoria, Producto.stock, Producto.activo)).all()
    assert {p.categoria for p in productos} == set(CATEGORIAS)
    assert all(p.stock >= 0 for p in productos)
    assert any(p.stock == 0 for p in productos)
    assert any(1 <= p.stock <= 9 for p in productos)
    assert any(not p.activo for p in productos)
    assert sum(p.activo for p in productos) > 20

    # Realistic states: mostly delivered, some cancelled; deliveries dated and assigned.
    estados = dict(s.execute(select(Pedido.estado, func.count()).group_by(Pedido.estado)).all())
    assert estados["entregado"] > 100
    assert estados.get("cancelado", 0) > 0
    entregados = s.execute(
        select(Pedido.created_at, Pedido.fecha_entrega, Pedido.mensajero_id)
        .where(Pedido.estado == "entregado")
    ).all()  # fmt: skip
    assert all(f is not None and c <= f <= FROZEN for c, f, _ in entregados)
    assert all(m is not None for _, _, m in entregados)
    assert s.scalar(
        select(func.count()).select_from(Pedido)
        .where(Pedido.estado != "entregado", Pedido.fecha_entrega.is_not(None))
    ) == 0  # fmt: skip
    roles = set(s.scalars(select(Usuario.rol)))
    assert {"cliente", "mensajero", "trabajador"} <= roles
    assert "admin" not in roles  # the admin is create-user's job

    # Sequences moved past the explicit ids: the app can keep inserting.
    nuevo = UsuarioFactory()
    assert nuevo.id == 21


def test_seed_demo_leaves_no_dead_delta_rows_for_a_miss_to_scan(runner, db):
    """Its fold (0017) moves every new row through the delta tables, whose heaps were
    then all dead rows: each statistics MISS seq-scanned them until autovacuum."""
    result = invoke(runner, "seed-demo", *SMALL, "--seed", "3")
    assert result.exit_code == 0, result.output + repr(result.exception)
    pages = db.session.execute(
        text(
            "SELECT relname, pg_relation_size(oid) / 8192 FROM pg_class WHERE relname IN "
            "('estadisticas_pedidos_delta', 'estadisticas_productos_vendidos_delta')"
        )
    ).all()
    assert dict(pages) == {
        "estadisticas_pedidos_delta": 0,
        "estadisticas_productos_vendidos_delta": 0,
    }


def test_seed_demo_leaves_the_planner_statistics_current(runner, db):
    # Right after an import the planner must know the tables' new sizes (a statistics
    # MISS read whole rollups otherwise): ANALYZE sets reltuples to what is there.
    truncate(db)
    assert invoke(runner, "seed-demo", *SMALL, "--seed", "4").exit_code == 0
    db.session.rollback()
    for table in ("pedidos", "detalles_pedido", "estadisticas_ventas_dia"):
        rows = db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        planned = db.session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
        )
        assert rows > 0
        assert planned == rows, (table, planned, rows)


def test_seed_demo_same_seed_same_data(runner, db):
    with time_machine.travel(FROZEN, tick=False):
        assert invoke(runner, "seed-demo", *SMALL, "--seed", "42").exit_code == 0
        first = digest(db)
        truncate(db)
        assert invoke(runner, "seed-demo", *SMALL, "--seed", "42").exit_code == 0
        second = digest(db)
        truncate(db)
        assert invoke(runner, "seed-demo", *SMALL, "--seed", "43").exit_code == 0
        other = digest(db)
    assert first == second
    assert other != first


def test_seed_demo_if_empty(runner, db):
    UsuarioFactory()
    result = invoke(runner, "seed-demo", *SMALL, "--if-empty")
    assert result.exit_code == 0
    assert "nothing to do" in result.output
    assert (count(db, Usuario), count(db, Pedido)) == (1, 0)

    truncate(db)
    assert invoke(runner, "seed-demo", *SMALL, "--if-empty").exit_code == 0
    assert count(db, Pedido) == 200
    assert invoke(runner, "seed-demo", *SMALL, "--if-empty").exit_code == 0
    assert count(db, Pedido) == 200


def test_seed_demo_adds_to_existing_data_and_invalidates_the_cache(runner, db):
    def pedidos_cached():
        return cache_manager.get(
            "metodos_pago", lambda: db.session.scalar(select(func.count()).select_from(Pedido))
        )

    def productos_cached():
        return cache_manager.get(
            "lista_productos",
            lambda: db.session.scalar(select(func.count()).select_from(Producto)),
        )

    assert (pedidos_cached(), productos_cached()) == (0, 0)
    assert invoke(runner, "seed-demo", *SMALL, "--seed", "1").exit_code == 0
    db.session.rollback()
    assert (pedidos_cached(), productos_cached()) == (200, 30)
    assert invoke(runner, "seed-demo", *SMALL, "--seed", "2").exit_code == 0
    db.session.rollback()
    assert (pedidos_cached(), productos_cached()) == (400, 60)
    assert count(db, Usuario) == 40


def test_seed_demo_on_sqlite(sqlite_app):
    from electro_isla.extensions import db

    result = sqlite_app.test_cli_runner().invoke(args=["seed-demo", *SMALL, "--seed", "5"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    with sqlite_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Pedido)) == 200
        totals = db.session.execute(
            select(Pedido.id, Pedido.total, func.sum(DetallePedido.subtotal))
            .join(DetallePedido, DetallePedido.pedido_id == Pedido.id)
            .group_by(Pedido.id, Pedido.total)
        ).all()  # fmt: skip
        assert len(totals) == 200
        assert all(total == lines for _, total, lines in totals)


@pytest.mark.parametrize(
    "args",
    [
        ["estadisticas-check"],
        ["seed-demo", "--pedidos", "5"],
        ["create-user", "ana", "--email", "ana@example.com", "--password", "muy-secreta"],
        ["set-user", "ana", "--rol", "admin"],
    ],
)
def test_a_database_not_migrated_yet_is_said_in_a_sentence(tmp_path, args):
    """A DBA's probe: each ended in a SQLAlchemy traceback (create-user's with the new
    password's hash among its parameters)."""
    from electro_isla import create_app
    from electro_isla.config import TestConfig

    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vacia.db'}",
            "REDIS_URL": None,
            "LOG_DIR": str(tmp_path / "logs"),
        },
    )
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "run `flask db upgrade` first" in result.output
    assert "scrypt:" not in result.output


def test_a_database_that_is_not_there_is_unavailable_not_unmigrated(tmp_path, pg_url):
    from sqlalchemy import make_url

    from electro_isla import create_app
    from electro_isla.config import TestConfig

    missing = make_url(pg_url).set(database="no_hay_tal_base_s14").render_as_string(False)
    app = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": missing, "REDIS_URL": None, "LOG_DIR": str(tmp_path / "l")},
    )
    result = app.test_cli_runner().invoke(args=["estadisticas-check"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert "database unavailable:" in result.output and "no_hay_tal_base_s14" in result.output
    assert "db upgrade" not in result.output


@pytest.mark.parametrize("args", [["db", "upgrade"], ["db", "current"], ["cache-warm"]])
def test_flask_db_and_cache_warm_say_an_unreachable_database_in_a_sentence(tmp_path, pg_url, args):
    """An operator's probe: `flask db upgrade` against an unreachable database printed two
    tracebacks (151 lines); cache-warm printed each warmer's exception with its SQL."""
    from sqlalchemy import make_url

    from electro_isla import create_app
    from electro_isla.config import TestConfig

    missing = make_url(pg_url).set(database="no_hay_tal_base_s15").render_as_string(False)
    app = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": missing, "REDIS_URL": None, "LOG_DIR": str(tmp_path / "l")},
    )
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "database unavailable:" in result.output and "no_hay_tal_base_s15" in result.output
    assert "Traceback" not in result.output and "SELECT" not in result.output


def test_a_migration_that_fails_keeps_its_traceback(tmp_path):
    """A reviewer: on SQLite stamped at 0006 without its tables, `flask db upgrade` failed
    inside 0010 and was told "the database has no schema yet: run flask db upgrade first"
    (the command just run), without the traceback that said where."""
    from electro_isla import create_app
    from electro_isla.config import TestConfig

    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a_medias.db'}",
            "REDIS_URL": None,
            "LOG_DIR": str(tmp_path / "logs"),
        },
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "stamp", "0006_refresh_families"]).exit_code == 0
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code != 0
    assert "db upgrade` first" not in result.output
    assert result.exception is not None and "no such table" in str(result.exception)
