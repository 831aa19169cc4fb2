"""Rollup operations: a failing trigger aborts the write, check finds drift, rebuild repairs
it, concurrent buyers keep the rollups exact, and HITs are served from the rendering."""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import json
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from electro_isla.catalogo.models import Producto
from electro_isla.estadisticas import operaciones
from electro_isla.estadisticas.models import ROLLUPS, TOTAL_DE
from electro_isla.estadisticas.registro import ESTADISTICAS, rendered
from electro_isla.estadisticas.ventana import meses
from electro_isla.extensions import db as _db
from electro_isla.json import loads
from electro_isla.pedidos.models import ESTADOS_VENTA, Pedido
from electro_isla_testing.factories import ProductoFactory
from tests.estadisticas.estadisticas_data import build_shop, insert_shop
from tests.helpers import auth_headers, user_with_role
from tests.pedidos.test_concurrencia import BODY, run_together

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
ENDPOINTS = ("ventas", "usuarios", "productos", "reporte")


def _shop(app, tz: str = "America/Havana", seed: int = 5) -> None:
    """The shop's rows, folded on PostgreSQL: taken by a fold (0017), so a change of
    them writes deltas, as the rows of a shop that has run for a while."""
    app.config["TIMEZONE"] = tz
    with app.app_context():
        insert_shop(build_shop(seed, NOW, ZoneInfo(tz)))
        if _db.session.get_bind().dialect.name == "postgresql":
            _db.session.execute(text("SELECT estadisticas_plegar()"))
            _db.session.commit()
        _db.session.remove()


def _rollup_rows(app) -> dict[str, list]:
    with app.app_context():
        rows = {t.name: sorted(map(tuple, _db.session.execute(select(t)))) for t in ROLLUPS}
        _db.session.remove()
        return rows


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        n = _db.session.scalar(select(func.count()).select_from(Pedido))
        stock = _db.session.scalar(select(func.sum(Producto.stock)))
        _db.session.remove()
        return n, stock


# -- a failing trigger aborts the write -------------------------------------------


# What the PostgreSQL triggers write since 0007: the deltas (the fold writes the rollups);
# since 0008 one table holds the deltas of pedidos_dia, ventas_dia and usuarios_pedidos.
PLANTED_PG = ("estadisticas_pedidos_delta",)


def _plant_failure(app) -> None:
    """Make every new write into a rollup fail inside the trigger."""
    with app.app_context(), _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for t in PLANTED_PG:
                conn.execute(
                    text(f"ALTER TABLE {t} ADD CONSTRAINT planted CHECK (false) NOT VALID")
                )
        else:
            for when in ("INSERT", "UPDATE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER planted_{when} BEFORE {when} ON estadisticas_pedidos_dia "
                        "BEGIN SELECT RAISE(ABORT, 'planted'); END"
                    )
                )


def _remove_failure(app) -> None:
    with app.app_context(), _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for t in PLANTED_PG:
                conn.execute(text(f"ALTER TABLE {t} DROP CONSTRAINT planted"))
        else:
            for when in ("INSERT", "UPDATE"):
                conn.execute(text(f"DROP TRIGGER planted_{when}"))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_failing_trigger_aborts_the_whole_write(request, backend):
    app = request.getfixturevalue("app" if backend == "postgresql" else "sqlite_app")
    _shop(app)
    staff = user_with_role(app, "admin")[1]
    if backend == "postgresql":  # the new admin's delta, folded before the snapshot
        with app.app_context(), _db.engine.begin() as conn:
            conn.execute(text("SELECT estadisticas_plegar()"))
    before_rows, before_counts = _rollup_rows(app), _counts(app)
    _plant_failure(app)
    try:
        with app.app_context():
            if backend == "sqlite":  # its row triggers write the rollups on INSERT too
                pedido = Pedido(
                    usuario_id=2,
                    estado="confirmado",
                    metodo_pago="efectivo",
                    direccion_entrega="x",
                    telefono="1",
                )
                _db.session.add(pedido)
                with pytest.raises(IntegrityError):
                    _db.session.commit()
                _db.session.rollback()
            with pytest.raises(IntegrityError), _db.engine.begin() as conn:
                conn.execute(
                    text("UPDATE pedidos SET created_at = created_at + interval '1 day'")
                    if backend == "postgresql"
                    else text("UPDATE pedidos SET created_at = datetime(created_at, '+1 day')")
                )
            _db.session.remove()
        if backend == "postgresql":
            # Through the API (tests propagate the error instead of a 500 envelope): a
            # cancel's restock goes back with the rest of the transaction. (An order's
            # INSERTs run no statistics trigger since 0017: nothing there can fail.)
            with app.app_context():
                venta = _db.session.scalar(
                    select(Pedido.id).where(Pedido.estado == "confirmado").limit(1)
                )
                _db.session.remove()
            with pytest.raises(IntegrityError):
                app.test_client().patch(
                    f"/api/admin/pedidos/{venta}/", json={"estado": "cancelado"}, headers=staff
                )
        assert _counts(app) == before_counts
        assert _rollup_rows(app) == before_rows
    finally:
        _remove_failure(app)
    with app.app_context():
        assert operaciones.comparar_rollups(meses())[1] == []


# -- check and rebuild ---------------------------------------------------------------


def test_check_finds_a_drift_planted_behind_a_disabled_trigger_and_rebuild_repairs_it(app):
    _shop(app)
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["estadisticas-check"])
    assert clean.exit_code == 0, clean.output
    assert "every figure equals" in clean.output
    # The dashboard is warm: its entries were computed before the drift.
    with app.app_context():
        for name in ENDPOINTS:
            rendered(name)
        sale = _db.session.scalar(
            select(Pedido.id).where(Pedido.estado == "entregado").order_by(Pedido.id).limit(1)
        )
        _db.session.remove()
        with _db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE pedidos DISABLE TRIGGER estadisticas_pedidos_upd"))
            conn.execute(
                text("UPDATE pedidos SET estado = 'cancelado' WHERE id = :id"), {"id": sale}
            )
            conn.execute(text("ALTER TABLE pedidos ENABLE TRIGGER estadisticas_pedidos_upd"))

    drift = runner.invoke(args=["estadisticas-check"])
    assert drift.exit_code == 1, drift.output
    lines = drift.output.splitlines()
    assert any(line.startswith("rollups ventas.metodos_pago") for line in lines), lines
    assert any(line.startswith("rollups reporte.resumen.ingresos_totales") for line in lines)
    # The cached answers equal the (drifted) rollups: the remedy named is the rebuild.
    assert "difference(s); the rollups differ from the raw rows" in drift.output
    assert "estadisticas-rebuild" in drift.output

    rebuilt = runner.invoke(args=["estadisticas-rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "estadisticas_ventas_dia" in rebuilt.output
    again = runner.invoke(args=["estadisticas-check"])
    assert again.exit_code == 0, again.output  # rollups repaired, cached entries invalidated


def _buyer(app):
    """place(): one order through the API from its own thread and app context, as a
    buyer's request would be, while the check holds its own session."""
    # The check waits this long for an invalidation on its way (the suite's is a minute).
    app.config["CACHE_PENDING_CHECK_MS"] = 200
    with app.app_context():
        producto = ProductoFactory(stock=50).id
    _uid, cliente = user_with_role(app, "cliente")
    order = {**BODY, "items": [{"producto_id": producto, "cantidad": 1}]}

    def place() -> int:
        with ThreadPoolExecutor(1) as pool:
            return (
                pool.submit(app.test_client().post, "/api/pedidos/", json=order, headers=cliente)
                .result()
                .status_code
            )

    return place


def test_orders_placed_during_an_endpoints_read_are_no_difference(app, monkeypatch):
    """An operator's probe: on a live shop every check exited 1 listing endpoint
    differences (its own orders, committed between the snapshot and the endpoint
    reads) and advised a rebuild that makes writers wait."""
    _shop(app)
    place = _buyer(app)
    real = operaciones.rendered
    placed = []

    def rendered_while_orders_commit(name: str) -> dict:
        if not placed:  # both during the first endpoint's first read
            placed.extend([place(), place()])
        return real(name)

    monkeypatch.setattr(operaciones, "rendered", rendered_while_orders_commit)
    with app.app_context():
        found = operaciones.check()
        _db.session.remove()
    assert placed == [201, 201]
    assert found == ([], [], []), found


def test_an_invalidation_still_on_its_way_is_no_difference(app, monkeypatch):
    """The cached answer of a committed write may be read before its bump lands (the
    outbox applies a failed one within CACHE_PENDING_CHECK_MS): a reviewer's probe saw
    that reported as a difference. Here the first read answers as from before the write."""
    _shop(app)
    place = _buyer(app)
    real = operaciones.rendered
    with app.app_context():
        stale = {name: real(name) for name in ENDPOINTS}
        _db.session.remove()
    assert place() == 201
    served_stale = []

    def rendered_before_the_bump(name: str) -> dict:
        if name not in served_stale:
            served_stale.append(name)
            return stale[name]
        return real(name)

    monkeypatch.setattr(operaciones, "rendered", rendered_before_the_bump)
    with app.app_context():
        found = operaciones.check()
        _db.session.remove()
    assert found == ([], [], []), found
    assert served_stale == list(ENDPOINTS)


def test_an_endpoint_every_read_of_which_meets_a_write_is_not_compared_and_exit_1(app, monkeypatch):
    _shop(app)
    place = _buyer(app)
    real = operaciones.rendered

    def rendered_while_an_order_commits(name: str) -> dict:
        if name == "reporte":
            assert place() == 201
        return real(name)

    monkeypatch.setattr(operaciones, "rendered", rendered_while_an_order_commits)
    result = app.test_cli_runner().invoke(args=["estadisticas-check"])
    assert result.exit_code == 1, result.output
    assert "not compared: reporte" in result.output
    assert "every figure equals" not in result.output


def test_a_stale_cached_answer_is_an_endpoint_difference_and_its_remedy_works(app):
    _shop(app)
    app.config["CACHE_PENDING_CHECK_MS"] = 200  # the settling wait (the suite's: a minute)
    runner = app.test_cli_runner()
    with app.app_context():
        rendered("reporte")  # cached, then a write the app does not see (raw SQL)
        _db.session.remove()
        with _db.engine.begin() as conn:
            sql = "UPDATE pedidos SET estado = 'cancelado' WHERE estado = 'entregado'"
            conn.execute(text(sql))
    stale = runner.invoke(args=["estadisticas-check"])
    assert stale.exit_code == 1, stale.output
    assert any(line.startswith("endpoint reporte.") for line in stale.output.splitlines())
    assert not any(line.startswith("rollups ") for line in stale.output.splitlines())
    assert "the cached answers do not: `flask cache-clear`" in stale.output
    # The remedy named, run as named, repairs it.
    assert runner.invoke(args=["cache-clear"]).exit_code == 0
    again = runner.invoke(args=["estadisticas-check"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_rebuild_gives_back_what_the_triggers_built(request, backend):
    app = request.getfixturevalue("app" if backend == "postgresql" else "sqlite_app")
    _shop(app, "Asia/Kathmandu", seed=9)
    by_triggers = _rollup_rows(app)
    with app.app_context():
        operaciones.rebuild()
        _db.session.remove()
    rebuilt = _rollup_rows(app)

    def folded(rows: dict[str, list]) -> dict[str, Counter]:
        # Slots, zero rows and unfolded deltas are the triggers' business; the sums
        # (a rollup's rows and its deltas added up) are what must match.
        out = {}
        for table, values in _pedidos_delta_split(rows).items():
            acc: Counter = out.setdefault(table.removesuffix("_delta"), Counter())
            for row in values:
                key = tuple(v for v, c in zip(row, _columns(table), strict=True) if c in _KEYS)
                for v, c in zip(row, _columns(table), strict=True):
                    if c not in _KEYS and c != "slot":
                        acc[(key, c)] += v
        out["estadisticas_retencion"].update(_retencion_pendiente(rows))
        return {table: Counter({k: v for k, v in acc.items() if v}) for table, acc in out.items()}

    assert folded(rebuilt) == folded(by_triggers)
    assert any(by_triggers.values())


_KEYS = {"dia", "estado", "metodo_pago", "producto_id", "usuario_id", "rol"}


def _columns(table: str) -> list[str]:
    return [c.name for t in ROLLUPS if t.name == table for c in t.columns]


def _retencion_pendiente(rows: dict[str, list]) -> Counter:
    """What the unfolded per-usuario deltas add to the retention counters, as the readers
    add it (estadisticas/rollups.retencion): since 0009 a fold may run between two rows
    of one statement, so the folded counters alone can hold part of a statement."""
    antes = dict(rows["estadisticas_usuarios_pedidos"])
    delta: Counter = Counter()
    for _dia, _estado, _metodo, usuario, pedidos, _centimos in rows["estadisticas_pedidos_delta"]:
        delta[usuario] += pedidos
    cruces: Counter = Counter()
    for usuario, d in delta.items():
        n = antes.get(usuario, 0)
        cruces[((), "con_pedidos")] += (n + d > 0) - (n > 0)
        cruces[((), "recurrentes")] += (n + d > 1) - (n > 1)
    return cruces


def _pedidos_delta_split(rows: dict[str, list]) -> dict[str, list]:
    """estadisticas_pedidos_delta's rows as the deltas of the three rollups they feed."""
    out = {t: v for t, v in rows.items() if t != "estadisticas_pedidos_delta"}
    split = {"estadisticas_pedidos_dia": [], "estadisticas_ventas_dia": []}
    split["estadisticas_usuarios_pedidos"] = []
    for dia, estado, metodo, usuario, pedidos, centimos in rows["estadisticas_pedidos_delta"]:
        split["estadisticas_pedidos_dia"].append((dia, estado, 0, pedidos))
        if estado in ESTADOS_VENTA:
            split["estadisticas_ventas_dia"].append((dia, metodo, 0, pedidos, centimos))
        split["estadisticas_usuarios_pedidos"].append((usuario, pedidos))
    # A total per key (0010) is its rollup's rows summed over days: its unfolded deltas
    # are its rollup's, without the dia.
    deltas = {**split, "estadisticas_usuarios_dia": rows["estadisticas_usuarios_dia_delta"]}
    for rollup, total in TOTAL_DE.items():
        source = _columns(rollup) if rollup in split else _columns(f"{rollup}_delta")
        wanted = _columns(total.name)
        picked = [
            [dict(zip(source, row, strict=True))[c] for c in wanted] for row in deltas[rollup]
        ]
        out[total.name] = out[total.name] + [tuple(row) for row in picked]
    for table, values in split.items():
        out[table] = out[table] + values
    return out


# -- hot rows ------------------------------------------------------------------------


def test_forty_concurrent_buyers_keep_the_rollups_exact(app):
    app.config["TIMEZONE"] = "UTC"
    with app.app_context():
        pids = [ProductoFactory(stock=1000).id for _ in range(4)]
    buyers = [user_with_role(app, "cliente")[1] for _ in range(20)]

    def order(i: int) -> int:
        response = app.test_client().post(
            "/api/pedidos/",
            json={"items": [{"producto_id": pids[i % 4], "cantidad": 1}], **BODY},
            headers=buyers[i % 20],
        )
        return response.status_code

    statuses = run_together(40, order)
    assert statuses == Counter({201: 40})
    with app.app_context():
        raw, found = operaciones.comparar_rollups(meses())
        assert found == []
        assert raw["reporte"]["resumen"]["total_pedidos"] == 40
        assert raw["usuarios"]["total_usuarios"] == 20
        assert raw["usuarios"]["usuarios_recurrentes"] == 20
        _db.session.remove()


# -- HITs from the rendering ---------------------------------------------------------


def _smorest_etag(app, document: dict) -> str:
    with app.app_context():
        return hashlib.sha1(json.dumps(document, sort_keys=True).encode()).hexdigest()  # noqa: S324


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hit_is_the_stored_rendering_of_the_miss(app, endpoint, monkeypatch):
    _shop(app)
    client = app.test_client()
    url = f"/api/admin/estadisticas/{endpoint}/"
    with time_machine.travel(NOW, tick=False):
        headers = auth_headers(app, 1)
        miss = client.get(url, headers=headers)
        schema = ESTADISTICAS[endpoint].schema

        def no_dump(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise AssertionError("a HIT dumped the data through the schema")

        monkeypatch.setattr(schema, "dump", no_dump)
        hit = client.get(url, headers=headers)
        monkeypatch.undo()
        assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
        assert hit.data == miss.data
        assert hit.headers["ETag"] == miss.headers["ETag"]
        assert hit.headers["ETag"].strip('"') == _smorest_etag(
            app, loads(hit.data)
        )  # money as dumped
        # What smorest would have answered from the plain cached value, byte for byte.
        with app.test_request_context():
            plain = ESTADISTICAS[endpoint].valor()
            smorest = app.json.response(schema().dump(plain)).get_data()
        assert hit.data == smorest
        not_modified = client.get(url, headers={**headers, "If-None-Match": hit.headers["ETag"]})
        assert (not_modified.status_code, not_modified.headers["X-Cache"]) == (304, "HIT")


def test_cache_warm_fills_the_entries_the_views_read(app):
    _shop(app)
    result = app.test_cli_runner().invoke(args=["cache-warm"])
    assert result.exit_code == 0, result.output
    response = app.test_client().get(
        "/api/admin/estadisticas/ventas/", headers=auth_headers(app, 1)
    )
    assert response.headers["X-Cache"] == "HIT"


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_seed_demo_copy_keeps_the_rollups_exact(request, backend):
    """seed-demo writes with COPY on PostgreSQL (statement triggers), ORM bulk on SQLite."""
    app = request.getfixturevalue("app" if backend == "postgresql" else "sqlite_app")
    app.config["TIMEZONE"] = "Asia/Kathmandu"
    args = ["seed-demo", "--pedidos", "3000", "--usuarios", "120", "--productos", "40"]
    result = app.test_cli_runner().invoke(args=[*args, "--seed", "7"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        raw, found = operaciones.comparar_rollups(meses())
        assert found == []
        assert raw["reporte"]["resumen"]["total_pedidos"] == 3000
        assert raw["ventas"]["productos_mas_vendidos"]
        _db.session.remove()


def test_truncate_empties_the_rollups_built_from_the_truncated_table(app):
    """TRUNCATE fires no DELETE trigger; the TRUNCATE triggers keep the rollups exact."""
    _shop(app)
    with app.app_context():
        _db.session.execute(text("TRUNCATE pedidos CASCADE"))
        _db.session.commit()
        raw, found = operaciones.comparar_rollups(meses())
        assert found == []
        assert raw["reporte"]["resumen"]["total_pedidos"] == 0
        assert raw["usuarios"]["usuarios_por_rol"][3]["count"] > 0  # usuarios untouched
        _db.session.remove()
