"""The Alembic migrations build exactly the models' schema, and tear it down again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import CheckConstraint, inspect, make_url, select, text
from sqlalchemy.exc import IntegrityError

from electro_isla import create_app
from electro_isla.catalogo.models import Producto
from electro_isla.catalogo.schemas import ProductoCreateSchema
from electro_isla.config import TestConfig
from electro_isla.estadisticas.models import ROLLUPS, en_los_modelos
from electro_isla.extensions import db

MODEL_TABLES = {
    "usuarios",
    "productos",
    "pedidos",
    "detalles_pedido",
    "refresh_tokens",
    "revoked_tokens",
    "cache_pending",
} | {t.name for t in ROLLUPS}


def migrated_app(url: str, tmp_path) -> Flask:
    return create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None, "LOG_DIR": str(tmp_path / "logs")},
    )


def flask_db(app: Flask, *args: str) -> None:
    """Run `flask db ...` the way an operator would."""
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)


def schema_differences(app: Flask) -> list:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": en_los_modelos,
            },
        )
        return compare_metadata(context, db.metadata)


def table_names(app: Flask) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A brand-new empty database next to the test database, dropped afterwards."""
    name = f"ei_migr_{uuid.uuid4().hex[:8]}"
    admin = make_url(pg_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_one_linear_history():
    from electro_isla.config import Config

    script = ScriptDirectory(Config.MIGRATIONS_DIR)
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_upgrade_on_empty_postgres_gives_the_models_schema(empty_pg_url, tmp_path):
    app = migrated_app(empty_pg_url, tmp_path)
    assert table_names(app) == set()

    flask_db(app, "upgrade")

    # 0017's horizon is the migrations' own (models.SOLO_EN_LA_BASE), as its column is.
    assert table_names(app) == MODEL_TABLES | {"alembic_version", "estadisticas_horizonte"}
    assert schema_differences(app) == []
    with app.app_context():
        # Autogenerate does not compare CHECK constraints: check them by name.
        expected = {
            db.metadata.naming_convention["ck"]
            % {"table_name": table.name, "constraint_name": constraint.name}
            if not constraint.name.startswith("ck_")
            else constraint.name
            for table in db.metadata.tables.values()
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        found = set(
            db.session.scalars(
                text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname LIKE 'ck_%'"
                )
            )
        )
        assert found == expected
        assert "ck_productos_stock_no_negativo" in found
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("pedidos")}
        assert {"ix_pedidos_created_at", "ix_pedidos_estado", "ix_pedidos_usuario_id"} <= indexes
        db.session.remove()
        db.engine.dispose()


def test_migrated_constraints_reject_bad_rows(empty_pg_url, tmp_path):
    app = migrated_app(empty_pg_url, tmp_path)
    flask_db(app, "upgrade")
    bad_rows = [
        "INSERT INTO productos (nombre, descripcion, precio, descuento, stock, categoria, "
        "imagen_url, activo, created_at, updated_at) VALUES ('x', '', 10, 0, -1, 'otros', '', "
        "true, now(), now())",
        "INSERT INTO productos (nombre, descripcion, precio, descuento, stock, categoria, "
        "imagen_url, activo, created_at, updated_at) VALUES ('x', '', 0, 0, 1, 'otros', '', "
        "true, now(), now())",
        "INSERT INTO productos (nombre, descripcion, precio, descuento, stock, categoria, "
        "imagen_url, activo, created_at, updated_at) VALUES ('x', '', 10, 101, 1, 'otros', '', "
        "true, now(), now())",
    ]
    with app.app_context():
        for sql in bad_rows:
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text(sql))
        db.engine.dispose()


def test_downgrade_to_base_removes_everything(empty_pg_url, tmp_path):
    app = migrated_app(empty_pg_url, tmp_path)
    flask_db(app, "upgrade")
    flask_db(app, "downgrade", "base")
    assert table_names(app) <= {"alembic_version"}
    flask_db(app, "upgrade")  # and back up again, cleanly
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_upgrade_and_downgrade_on_sqlite(tmp_path):
    app = migrated_app(f"sqlite:///{tmp_path / 'migrated.db'}", tmp_path)
    flask_db(app, "upgrade")
    assert table_names(app) == MODEL_TABLES | {"alembic_version"}
    assert schema_differences(app) == []
    with app.app_context(), db.engine.connect() as conn:
        # SQLite cannot reflect expression indexes, so autogenerate skips them: look.
        found = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
        assert {"uq_usuarios_lower_username", "uq_usuarios_lower_email"} <= found
    flask_db(app, "downgrade", "base")
    assert table_names(app) <= {"alembic_version"}


USUARIO_SQL = (
    "INSERT INTO usuarios (username, email, password_hash, first_name, last_name, rol, "
    "is_active, date_joined, telefono, direccion) VALUES (:u, :e, 'x', '', '', 'cliente', "
    "true, now(), '', '')"
)


def test_case_rule_migration_lowercases_emails_and_enforces_one_name_per_case(
    empty_pg_url, tmp_path
):
    app = migrated_app(empty_pg_url, tmp_path)
    flask_db(app, "upgrade", "0001_initial")
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(USUARIO_SQL), {"u": "Ana", "e": "Ana@Example.TEST"})
        flask_db(app, "upgrade")
        assert db.session.scalar(text("SELECT email FROM usuarios")) == "ana@example.test"
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("usuarios")}
        assert {"uq_usuarios_lower_username", "uq_usuarios_lower_email"} <= indexes
        for username, email in (("ANA", "otra@example.test"), ("otra", "ANA@example.test")):
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text(USUARIO_SQL), {"u": username, "e": email})
        db.session.remove()
        db.engine.dispose()


def test_case_rule_migration_stops_on_existing_case_duplicates(empty_pg_url, tmp_path, caplog):
    app = migrated_app(empty_pg_url, tmp_path)
    flask_db(app, "upgrade", "0001_initial")
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(USUARIO_SQL), {"u": "Ana", "e": "a1@example.test"})
            conn.execute(text(USUARIO_SQL), {"u": "ana", "e": "a2@example.test"})
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code != 0
        assert "differs only in case: ana" in result.output + repr(result.exception) + str(
            caplog.text
        )
        db.engine.dispose()


def at_0011_with_usernames(url: str, tmp_path, *names: str) -> Flask:
    """An app at the revision before 0012 whose usuarios are named `names`."""
    app = migrated_app(url, tmp_path)
    flask_db(app, "upgrade", "0011_tick_sin_secuencia")
    with app.app_context(), db.engine.begin() as conn:
        for n, name in enumerate(names):
            conn.execute(text(USUARIO_SQL), {"u": name, "e": f"u{n}@example.test"})
    return app


def usernames(app: Flask) -> list[str]:
    with app.app_context():
        try:
            return db.session.scalars(text("SELECT username FROM usuarios ORDER BY id")).all()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_usernames_migration_rewrites_them_in_nfkc_so_they_log_in_again(
    empty_pg_url, tmp_path, caplog
):
    """A full-width name stored before 0012 could not log in once lookups normalised."""
    app = at_0011_with_usernames(empty_pg_url, tmp_path, "\uff41dmin7", "Ana")
    with caplog.at_level("WARNING", logger="alembic.runtime.migration"):
        flask_db(app, "upgrade")
    assert usernames(app) == ["admin7", "Ana"]
    assert "username rewritten in NFKC form as 'admin7'" in caplog.text
    assert "usernames rewritten for 1 usuarios: run `flask cache-clear`" in caplog.text


@pytest.mark.parametrize(
    "names",
    [("ANA", "\uff41na"), ("\uff41na", "\uff41\uff4e\uff41")],  # held as is; two rewrites
)
def test_usernames_migration_stops_on_a_name_another_usuario_holds(empty_pg_url, tmp_path, names):
    app = at_0011_with_usernames(empty_pg_url, tmp_path, *names)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code != 0
    assert "in NFKC form is another's: ana" in result.output + repr(result.exception)
    assert usernames(app) == list(names)  # nothing rewritten


def test_rollups_migration_backfills_existing_rows_and_downgrade_drops_its_triggers(
    empty_pg_url, tmp_path
):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from electro_isla.estadisticas.operaciones import comparar_rollups
    from electro_isla.estadisticas.ventana import meses
    from tests.estadisticas.estadisticas_data import build_shop, insert_shop

    app = migrated_app(empty_pg_url, tmp_path)
    app.config["TIMEZONE"] = "Asia/Kathmandu"
    flask_db(app, "upgrade", "0001_initial")
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    with app.app_context():
        insert_shop(build_shop(3, now, ZoneInfo("Asia/Kathmandu")))
        db.session.remove()
    flask_db(app, "upgrade")
    with app.app_context():
        raw, found = comparar_rollups(meses(now))
        assert found == [] and raw["reporte"]["resumen"]["total_pedidos"] == 260
        db.session.remove()
    flask_db(app, "downgrade", "0001_initial")
    with app.app_context():
        left = db.session.scalars(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'estadisticas%' UNION ALL "
                "SELECT proname FROM pg_proc WHERE proname LIKE 'estadisticas%'"
            )
        ).all()
        assert left == []
        # Writes work without the rollups (no trigger left pointing at a dropped table).
        db.session.execute(text("UPDATE pedidos SET estado = 'cancelado'"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


# (rollup sums, raw sums) that hold under 0002's and 0007's schema alike.
ROLLUP_VS_RAW = (
    (
        "SELECT dia, estado, sum(pedidos) FROM ({rows}) t GROUP BY 1, 2 HAVING sum(pedidos) <> 0",
        "estadisticas_pedidos_dia",
        "dia, estado, pedidos",
        "SELECT (created_at AT TIME ZONE 'UTC')::date, estado, count(*) FROM pedidos GROUP BY 1, 2",
    ),
    (
        "SELECT producto_id, sum(cantidad) FROM ({rows}) t GROUP BY 1 HAVING sum(cantidad) <> 0",
        "estadisticas_productos_vendidos",
        "producto_id, cantidad",
        "SELECT d.producto_id, sum(d.cantidad) FROM detalles_pedido d JOIN pedidos p "
        "ON p.id = d.pedido_id WHERE p.estado IN ('confirmado', 'en_preparacion', 'en_camino', "
        "'entregado') GROUP BY 1",
    ),
    (
        "SELECT usuario_id, sum(pedidos) FROM ({rows}) t GROUP BY 1 HAVING sum(pedidos) <> 0",
        "estadisticas_usuarios_pedidos",
        "usuario_id, pedidos",
        "SELECT usuario_id, count(*) FROM pedidos GROUP BY 1",
    ),
)


# Since 0008 one delta table holds these rollups' deltas (with the same column names).
PEDIDOS_DELTA_FEEDS = {"estadisticas_pedidos_dia", "estadisticas_usuarios_pedidos"}


def _rollups_equal_raw(app: Flask) -> dict:
    """Each rollup (plus its deltas when the table exists) summed per key == raw rows."""
    with app.app_context():
        inspector = inspect(db.engine)
        # Since 0017 a view reads a delta table and the rows no fold took yet.
        tables = set(inspector.get_table_names()) | set(inspector.get_view_names())

        def pending(delta: str) -> str:
            view = delta.replace("_delta", "_pendientes")
            return view if view in tables else delta

        seen = {}
        for summed, rollup, cols, raw in ROLLUP_VS_RAW:
            rows = f"SELECT {cols} FROM {rollup}"  # noqa: S608  (constants above)
            if f"{rollup}_delta" in tables:
                rows += f" UNION ALL SELECT {cols} FROM {pending(rollup + '_delta')}"  # noqa: S608
            if rollup in PEDIDOS_DELTA_FEEDS and "estadisticas_pedidos_delta" in tables:
                feed = pending("estadisticas_pedidos_delta")
                rows += f" UNION ALL SELECT {cols} FROM {feed}"  # noqa: S608
            got = sorted(map(tuple, db.session.execute(text(summed.format(rows=rows)))))
            assert got == sorted(map(tuple, db.session.execute(text(raw)))), rollup
            seen[rollup] = got
        con, rec = db.session.execute(
            text("SELECT sum(con_pedidos), sum(recurrentes) FROM estadisticas_retencion")
        ).one()
        assert (con, rec) == db.session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE n > 1) FROM "
                "(SELECT count(*) AS n FROM pedidos GROUP BY usuario_id) u"
            )
        ).one()
        db.session.remove()
    return seen


def shop_at(
    url: str, tmp_path: Path, revision: str, zone: str, seed: int
) -> tuple[Flask, Callable[[str], int | None]]:
    """An app migrated to `revision` holding a generated shop (store in `zone`), and a
    runner of one committed statement that answers its scalar, if any."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from tests.estadisticas.estadisticas_data import build_shop, insert_shop

    app = migrated_app(url, tmp_path)
    app.config["TIMEZONE"] = zone
    flask_db(app, "upgrade", revision)
    with app.app_context():
        insert_shop(build_shop(seed, datetime.now(UTC), ZoneInfo(zone)))
        db.session.remove()

    def sql(statement: str) -> int | None:
        with app.app_context():
            result = db.session.execute(text(statement))
            n = result.scalar() if result.returns_rows else None
            db.session.commit()
            db.session.remove()
            return n

    return app, sql


def test_rollups_without_a_hot_row_migrate_both_ways_and_stay_exact(empty_pg_url, tmp_path):
    """0007 collapses 0002's pid slots into slot 0 and switches the triggers to deltas;
    its downgrade folds the deltas and puts 0002's upserting triggers back."""
    app, sql = shop_at(empty_pg_url, tmp_path, "0006_refresh_families", "America/Havana", seed=4)

    cancel = (
        "UPDATE pedidos SET estado = 'cancelado' WHERE id = "
        "(SELECT min(id) FROM pedidos WHERE estado <> 'cancelado')"
    )
    sql(cancel)  # 0002: into this backend's pid slot (perhaps 0): move some rows to 15
    sql(
        "UPDATE estadisticas_pedidos_dia t SET slot = 15 WHERE slot = 0 AND NOT EXISTS "
        "(SELECT 1 FROM estadisticas_pedidos_dia o WHERE o.dia = t.dia AND o.estado = t.estado "
        "AND o.slot = 15)"
    )
    assert sql("SELECT count(*) FROM estadisticas_pedidos_dia WHERE slot <> 0") > 0
    before = _rollups_equal_raw(app)
    flask_db(app, "upgrade", "0007_rollups_sin_fila_caliente")
    assert sql("SELECT count(*) FROM estadisticas_pedidos_dia WHERE slot <> 0") == 0
    assert _rollups_equal_raw(app) == before
    sql(cancel)
    assert sql("SELECT count(*) FROM estadisticas_pedidos_dia_delta") > 0  # a delta, no upsert
    after_write = _rollups_equal_raw(app)
    # The application's own check (comparar_rollups) reads the head schema: it runs on
    # 0007's deltas once 0008 has folded them, in the test below.
    flask_db(app, "downgrade", "0006_refresh_families")
    assert _rollups_equal_raw(app) == after_write  # the deltas were folded first
    sql(cancel)  # 0002's triggers are back and keep the rollups exact
    assert _rollups_equal_raw(app) != after_write
    with app.app_context():
        db.engine.dispose()


def test_0007s_downgrade_waits_for_an_order_in_flight(empty_pg_url, tmp_path):
    """A DBA's probe: 0007's downgrade folded, then dropped the delta tables, while an
    open transaction's deltas were still to come: that order left the rollups."""
    import threading

    app, sql = shop_at(empty_pg_url, tmp_path, "0007_rollups_sin_fila_caliente", "UTC", seed=3)
    usuario = sql("SELECT min(id) FROM usuarios")
    inserted = threading.Event()
    failed: list[BaseException] = []

    def order_in_flight() -> None:
        try:
            _order_in_flight()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failed.append(exc)
            inserted.set()

    def _order_in_flight() -> None:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, "
                    "direccion_entrega, telefono, notas, created_at, updated_at) VALUES "
                    "(:u, 'confirmado', 'tarjeta', 999.99, 'c', '5', '', now(), now())"
                ),
                {"u": usuario},
            )
            inserted.set()
            time.sleep(2.0)  # the downgrade starts meanwhile

    writer = threading.Thread(target=order_in_flight)
    writer.start()
    assert inserted.wait(10)
    flask_db(app, "downgrade", "0006_refresh_families")
    writer.join(10)
    assert not writer.is_alive() and not failed, failed
    _rollups_equal_raw(app)
    with app.app_context():
        db.engine.dispose()


def test_one_delta_per_pedido_migrates_both_ways_with_unfolded_deltas(empty_pg_url, tmp_path):
    """0008 folds the deltas 0007 wrote (none is lost) before replacing three delta tables
    by one; its downgrade folds the new deltas and puts 0007's tables and triggers back."""
    from electro_isla.estadisticas.operaciones import comparar_rollups
    from electro_isla.estadisticas.ventana import meses

    app, sql = shop_at(
        empty_pg_url, tmp_path, "0007_rollups_sin_fila_caliente", "Europe/Madrid", seed=6
    )

    cancel = (
        "UPDATE pedidos SET estado = 'cancelado' WHERE id = "
        "(SELECT min(id) FROM pedidos WHERE estado IN ('confirmado', 'entregado'))"
    )
    sql("SELECT estadisticas_plegar()")
    sql(cancel)  # 0007: deltas of pedidos_dia, ventas_dia, usuarios_pedidos, productos
    assert sql("SELECT count(*) FROM estadisticas_ventas_dia_delta") > 0
    assert sql("SELECT count(*) FROM estadisticas_productos_vendidos_delta") > 0
    before = _rollups_equal_raw(app)

    flask_db(app, "upgrade")
    tables = table_names(app)
    assert "estadisticas_pedidos_delta" in tables
    assert "estadisticas_ventas_dia_delta" not in tables
    assert _rollups_equal_raw(app) == before
    with app.app_context():
        assert comparar_rollups(meses())[1] == []
        db.session.remove()
    sql(cancel)
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") > 0  # a delta, no upsert
    after_write = _rollups_equal_raw(app)
    with app.app_context():
        assert comparar_rollups(meses())[1] == []
        db.session.remove()

    flask_db(app, "downgrade", "0007_rollups_sin_fila_caliente")
    assert "estadisticas_pedidos_delta" not in table_names(app)
    assert _rollups_equal_raw(app) == after_write  # the new deltas were folded first
    sql(cancel)  # 0007's triggers are back and write 0007's deltas
    assert sql("SELECT count(*) FROM estadisticas_ventas_dia_delta") > 0
    assert _rollups_equal_raw(app) != after_write  # and still equal to the raw rows
    flask_db(app, "upgrade")
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


def _exact_at(app: Flask, at: str) -> dict:
    """The rollups at revision `at` equal the raw rows (raw SQL), and head's readers agree
    (they need head's schema: 0010's totals, 0017's views; its upgrade folds what it
    must, its downgrade back to `at` restores the rest). The rollups as raw SQL read them."""
    from electro_isla.estadisticas.operaciones import comparar_rollups
    from electro_isla.estadisticas.ventana import meses

    seen = _rollups_equal_raw(app)
    if at != "head":
        flask_db(app, "upgrade")
    with app.app_context():
        assert comparar_rollups(meses())[1] == []
        db.session.remove()
    if at != "head":
        flask_db(app, "downgrade", at)
    return seen


def test_row_triggers_migrate_both_ways_with_unfolded_deltas(empty_pg_url, tmp_path):
    """0009 folds what 0008's statement triggers wrote and swaps in row triggers (and
    the bulk-mode statement triggers); its downgrade folds again and puts 0008's back."""

    app, sql = shop_at(empty_pg_url, tmp_path, "0008_un_delta_por_pedido", "Asia/Kathmandu", seed=7)

    def exact(at: str = "0008_un_delta_por_pedido") -> dict:
        return _exact_at(app, at)

    row_triggers = (
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgtype & 1 = 1 "
        "AND tgname ~ '^estadisticas_(pedidos|detalles|usuarios)_(ins|upd|del)$'"
    )
    cancel = (
        "UPDATE pedidos SET estado = 'cancelado' WHERE id = "
        "(SELECT min(id) FROM pedidos WHERE estado IN ('confirmado', 'entregado'))"
    )
    sql("SELECT estadisticas_plegar()")
    sql(cancel)  # 0008: unfolded deltas
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") > 0
    assert sql(row_triggers) == 0
    # Raw only here: exact() passes through head, whose 0009 would fold these deltas.
    before = _rollups_equal_raw(app)

    flask_db(app, "upgrade", "0009_deltas_por_fila")
    assert sql(row_triggers) == 9
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 0  # folded first
    assert exact("0009_deltas_por_fila") == before
    sql(cancel)  # a row delta per changed pedido
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 2
    after_write = exact("0009_deltas_por_fila")

    flask_db(app, "downgrade", "0008_un_delta_por_pedido")
    assert sql(row_triggers) == 0
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 0
    assert exact() == after_write
    sql(cancel)  # 0008's statement triggers are back
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") > 0
    assert exact() != after_write
    flask_db(app, "upgrade")
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


def test_rows_as_their_own_deltas_migrate_both_ways_with_unfolded_ones(empty_pg_url, tmp_path):
    """0017 folds what 0016's row triggers wrote, drops the INSERT triggers and tags new
    rows with their transaction; rows no fold took are read as they are. Its downgrade
    takes every row and puts 0016's triggers back: exact at each step."""

    at_0016 = "0016_funciones_con_su_esquema"
    app, sql = shop_at(empty_pg_url, tmp_path, at_0016, "America/Havana", seed=11)

    def exact(at: str) -> dict:
        return _exact_at(app, at)

    insert_triggers = (
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname IN "
        "('estadisticas_pedidos_ins', 'estadisticas_detalles_ins')"
    )
    cancel = (
        "UPDATE pedidos SET estado = 'cancelado' WHERE id = "
        "(SELECT {0}(id) FROM pedidos WHERE estado IN ('confirmado', 'entregado'))"
    )
    order = (
        "WITH p AS (INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, "
        "direccion_entrega, telefono, notas, created_at, updated_at) SELECT min(id), "
        "'confirmado', 'efectivo', 7.25, '', '', '', now(), now() FROM usuarios RETURNING id) "
        "INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, "
        "precio_unitario, subtotal) SELECT p.id, (SELECT min(id) FROM productos), 'x', 1, "
        "7.25, 7.25 FROM p"
    )
    sql("SELECT estadisticas_plegar()")
    sql(cancel.format("min"))  # 0016: a row delta
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") > 0
    before = _rollups_equal_raw(app)

    flask_db(app, "upgrade", "0017_filas_como_deltas")
    assert sql(insert_triggers) == 0
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 0  # folded first
    assert sql("SELECT count(*) FROM pedidos WHERE alta_xact <> '0'") == 0
    assert exact("head") == before
    sql(order)  # untaken rows, read through the views
    sql(order)
    assert sql("SELECT count(*) FROM estadisticas_pedidos_pendientes") == 2
    sql(cancel.format("max"))  # one of them: untaken, no delta
    sql(cancel.format("min"))  # a taken one: a delta
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 2
    after_writes = exact("head")

    flask_db(app, "downgrade", at_0016)
    assert sql(insert_triggers) == 2
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 0
    assert exact(at_0016) == after_writes
    sql(order)  # 0016's row triggers are back: deltas
    assert sql("SELECT count(*) FROM estadisticas_pedidos_delta") == 1
    back = exact(at_0016)
    flask_db(app, "upgrade")
    assert exact("head") == back
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


def test_a_repeatable_read_change_from_before_0017_is_a_serialization_failure(
    empty_pg_url, tmp_path
):
    """A REPEATABLE READ snapshot from before the upgrade sees no horizon row: its UPDATE
    of a taken pedido wrote no delta and the change was lost (a reviewer)."""
    from sqlalchemy.exc import OperationalError

    app, sql = shop_at(empty_pg_url, tmp_path, "0016_funciones_con_su_esquema", "UTC", seed=3)
    sql("SELECT estadisticas_plegar()")
    with app.app_context():
        engine = db.engine
    conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    old = conn.begin()
    conn.execute(text("SELECT count(*) FROM usuarios"))  # the snapshot
    try:
        flask_db(app, "upgrade")
        with pytest.raises(OperationalError) as refused:
            conn.execute(
                text(
                    "UPDATE pedidos SET estado = 'cancelado' WHERE id = "
                    "(SELECT min(id) FROM pedidos WHERE estado = 'entregado')"
                )
            )
    finally:
        old.rollback()
        conn.close()
    assert refused.value.orig.sqlstate == "40001"
    _exact_at(app, "head")
    with app.app_context():
        db.engine.dispose()


PICTURES = {  # imagen_url before 0013 -> after 0013 and 0014
    "": "",
    "https://cdn.example.test/a.png": "https://cdn.example.test/a.png",
    "HTTP://cdn.example.test/b.png?w=2": "HTTP://cdn.example.test/b.png?w=2",
    "/media/c.png": "/media/c.png",
    "javascript:alert(1)": "",
    "data:image/png;base64,AAAA": "",
    " https://cdn.example.test/d.png": "",
    "https://": "",
    "cdn.example.test/e.png": "",
    # 0014: another host, by a browser's reading
    "//evil.example/f.png": "",
    "/\\evil.example/g.png": "",
    "/": "/",
    "/media//h.png": "/media//h.png",
}


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_imagen_url_migration_clears_what_the_api_refuses(backend, request, tmp_path, caplog):
    """Values stored before the API checked imagen_url (a `javascript:` link) are
    cleared and logged; every value it keeps, the API accepts, and no other."""
    if backend == "postgresql":
        url = request.getfixturevalue("empty_pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'migr.db'}"
    app = migrated_app(url, tmp_path)
    flask_db(app, "upgrade", "0012_usernames_nfkc")
    with app.app_context(), db.engine.begin() as conn:
        for n, picture in enumerate(PICTURES):
            conn.execute(
                text(
                    "INSERT INTO productos (nombre, descripcion, precio, descuento, stock, "
                    "categoria, imagen_url, activo, created_at, updated_at) VALUES "
                    "(:n, '', 10, 0, 1, 'otros', :u, true, :t, :t)"
                ),
                {"n": f"p{n}", "u": picture, "t": datetime(2025, 1, 1)},
            )
    with caplog.at_level("WARNING", logger="alembic.runtime.migration"):
        flask_db(app, "upgrade")
    with app.app_context():
        rows = db.session.scalars(select(Producto).order_by(Producto.id)).all()
        after = {old: p.imagen_url for old, p in zip(PICTURES, rows, strict=True)}
        touched = {old for old, p in zip(PICTURES, rows, strict=True) if p.updated_at.year > 2025}
        db.session.remove()
        db.engine.dispose()
    assert after == PICTURES
    assert touched == {old for old, new in PICTURES.items() if new != old}
    assert "imagen_url 'javascript:alert(1)' cleared" in caplog.text
    assert "imagen_url '//evil.example/f.png' cleared (a path a browser reads" in caplog.text
    assert "run `flask cache-clear`" in caplog.text
    schema = ProductoCreateSchema()

    def stored_by_the_api(value: str) -> bool:  # accepted, and kept as it is (not trimmed)
        body = {"nombre": "x", "precio": "1", "imagen_url": value}
        return not schema.validate(body) and schema.load(body)["imagen_url"] == value

    accepted = {old for old in PICTURES if stored_by_the_api(old)}
    assert accepted == {old for old, new in PICTURES.items() if new == old}


def test_the_cli_upgrade_says_which_migrations_it_runs(tmp_path):
    """The app's logging is set up before env.py runs, so alembic.ini's was skipped and
    `flask db upgrade` printed nothing at all on success (a probe)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LOG_DIR": str(tmp_path / "logs"),
        "APP_ENV": "development",
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout + done.stderr
    assert "Running upgrade  -> 0001_initial," in out
    assert f"-> {ScriptDirectory(TestConfig.MIGRATIONS_DIR).get_current_head()}" in out


FUNCIONES_SIN_ESQUEMA = text(
    "SELECT p.oid::regprocedure::text FROM pg_proc p "
    "WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f' "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
    "AND d.objid = p.oid AND d.deptype = 'e') "
    "AND NOT coalesce(p.proconfig::text[] && ARRAY["
    "'search_path=' || quote_ident(current_schema()) || ', pg_temp'], false) ORDER BY 1"
)
BLOQUEO_MASIVO = text(
    "SELECT proname FROM pg_proc WHERE proname LIKE 'estadisticas_detalles_masivo_%' "
    "AND prosrc LIKE '%FOR SHARE OF p%' ORDER BY 1"
)


def test_every_function_knows_its_schema_and_0016_goes_both_ways(empty_pg_url, tmp_path):
    """A restore (search_path = '') ran the trigger functions without the app's schema:
    each must name it (migration 0016). A later migration that CREATE OR REPLACEs a
    function without its SET clause fails here."""
    app = migrated_app(empty_pg_url, tmp_path)
    flask_db(app, "upgrade", "0015_lineas_tras_su_pedido")
    with app.app_context():
        # An extension's functions in the same schema are not the migrations' to alter
        # (a reviewer: the upgrade stopped on pg_stat_statements' "must be owner").
        db.session.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.session.commit()
        db.session.remove()
    flask_db(app, "upgrade")

    def seen() -> tuple[list[str], list[str]]:
        with app.app_context():
            sin = list(db.session.scalars(FUNCIONES_SIN_ESQUEMA))
            con = list(db.session.scalars(BLOQUEO_MASIVO))
            db.session.remove()
        return sin, con

    masivo = ["estadisticas_detalles_masivo_del", "estadisticas_detalles_masivo_ins"]
    masivo.insert(2, "estadisticas_detalles_masivo_upd")
    assert seen() == ([], masivo)
    flask_db(app, "downgrade", "0015_lineas_tras_su_pedido")
    sin, con = seen()
    assert len(sin) > 20 and con == []
    flask_db(app, "upgrade")
    assert seen() == ([], masivo)
    with app.app_context():
        altered = db.session.scalar(
            text(
                "SELECT count(*) FROM pg_proc WHERE proname = 'similarity' AND proconfig IS NOT NULL"
            )
        )
        db.session.remove()
    assert altered == 0
